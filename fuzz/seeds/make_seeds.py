#!/usr/bin/env python3
"""Writes the seed inputs (fuzz/seeds/<target>/seed-*) from real header values and fixtures.

Run: python3 fuzz/seeds/make_seeds.py (from anywhere). Signed verify_any seeds use the secrets
fixed in fuzz_targets/verify_any.rs, so the fuzzer starts on the signature-matches paths.
"""
import base64, glob, hashlib, hmac, os

HERE = os.path.dirname(os.path.abspath(__file__))
FUZZ = os.path.dirname(HERE)
ROOT = os.path.dirname(FUZZ)

def put(target, name, data):
    d = os.path.join(HERE, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)

NETBOX_SIG = "4e19785ff464c560af0d9dfea06efbb6099f9151e2cc78923a8090ac76cbb77a847d3496bf8cdb2d950edc3c71fe5b10b6374349bc84c8bab4dea67c08f27f80"
GITHUB_SIG = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"  # GitHub docs example
SLACK_SIG = "a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"  # Slack docs example
SHOPIFY_SIG = "XWmrwMey6OsLMeiZKwP4FppHH3cmAiiJJAweH5Jo4bM="
SVIX_SIG = "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="  # Svix docs example
STRIPE = ("t=1492774577,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd,"
          "v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39")

# Parsers.
put("parse_hex", "netbox", NETBOX_SIG)
put("parse_hex", "upper", GITHUB_SIG.upper())
put("parse_hex", "odd", "abc")
put("parse_hex", "spaces", " 0aFf \t")
put("parse_base64", "shopify", SHOPIFY_SIG)
put("parse_base64", "nopad", SHOPIFY_SIG.rstrip("="))
put("parse_base64", "short", "/w==")
for i, (prefix, sig) in enumerate([("sha256=", GITHUB_SIG), ("v0=", SLACK_SIG), ("sha1=", "d03207e4b030cf234e3447bac4d93add4c6643d8"), ("", NETBOX_SIG)]):
    put("parse_prefixed_hex", "p%d" % i, bytes([i]) + (prefix + sig).encode())
put("parse_prefixed_hex", "wrong-prefix", b"\x00sha1=00ff")
put("parse_standard_webhooks", "svix", "v1," + SVIX_SIG)
put("parse_standard_webhooks", "rotation", "v1a,hnO3f9T8Ytu9HwrXslvumlUpqtNVqkhqw/enGzPCXe5BdqzCInXqYXFymVJaA7AZdpXwVLPo3mNl8EM+m7TBAg== v1," + SVIX_SIG + " v1,/w==")
put("parse_standard_webhooks", "noversion", SVIX_SIG)
put("parse_stripe", "docs", STRIPE)
put("parse_stripe", "two-v1", "t=1492774577, v1=00ff, v1=" + GITHUB_SIG)
put("parse_stripe", "no-t", "v1=00")
put("parse_unix_seconds", "slack", "1531420618")
put("parse_unix_seconds", "padded", " 0001614265330 ")
put("parse_unix_seconds", "neg", "-5")

# verify_any: "<now>\n<headers>\n\n<body>", signed as a sender would with the fixed secrets.
SECRET = b"my-webhook-secret"
WHSEC_KEY = base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
NOW = "1795440642"
ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
body = open(os.path.join(ROOT, "tests/fixtures/netbox/v3.5.9-created.json"), "rb").read()
small = b'{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","type":"payment_intent.succeeded","object":"event"}'

def mac(key, msg, algo=hashlib.sha256):
    return hmac.new(key, msg, algo).digest()

def request(headers, b):
    return (NOW + "\n" + "".join("%s: %s\n" % h for h in headers) + "\n").encode() + b

put("verify_any", "netbox", request([("X-Hook-Signature", mac(SECRET, body, hashlib.sha512).hex()), ("Content-Type", "application/json")], body))
put("verify_any", "github", request([("X-Hub-Signature-256", "sha256=" + mac(SECRET, small).hex()), ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"), ("X-GitHub-Event", "push")], small))
put("verify_any", "gitlab", request([("X-Gitlab-Token", SECRET.decode()), ("X-Gitlab-Event-UUID", "13792a34-cac6-4fda-95a8-c58e00a3954e"), ("Idempotency-Key", "f1d1b8f0-4cfa-4e5e-9f71-4a1c5b0d8a0e")], small))
sw = mac(WHSEC_KEY, (ID + "." + NOW + ".").encode() + small)
put("verify_any", "standard-webhooks", request([("webhook-id", ID), ("webhook-timestamp", NOW), ("webhook-signature", "v1a,AAAA v1," + base64.b64encode(sw).decode())], small))
put("verify_any", "svix", request([("svix-id", ID), ("svix-timestamp", NOW), ("svix-signature", "v1," + base64.b64encode(sw).decode())], small))
put("verify_any", "stripe", request([("Stripe-Signature", "t=%s,v1=%s,v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39" % (NOW, mac(SECRET, (NOW + ".").encode() + small).hex()))], small))
slack_body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&command=%2Fweather&text=94070"
put("verify_any", "slack", request([("X-Slack-Request-Timestamp", NOW), ("X-Slack-Signature", "v0=" + mac(SECRET, ("v0:" + NOW + ":").encode() + slack_body).hex())], slack_body))
put("verify_any", "shopify", request([("X-Shopify-Hmac-Sha256", base64.b64encode(mac(SECRET, small)).decode()), ("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")], small))
put("verify_any", "hmac-sha1", request([("X-Signature", "sha1=" + mac(SECRET, small, hashlib.sha1).hex()), ("X-Request-Id", "req-1")], small))
put("verify_any", "hmac-md5", request([("X-Signature", mac(SECRET, small, hashlib.md5).hex())], small))
put("verify_any", "garbage", request([("X-Hook-Signature", "zz"), ("webhook-timestamp", "-1"), ("Stripe-Signature", "t=1"), ("X-Slack-Signature", "v0=abc")], b"x"))

# config_toml: the shipped configs.
for p in ["config/default.toml", "config/webhook-listener.toml"] + sorted(glob.glob(os.path.join(ROOT, "config/examples/*.toml"))):
    p = os.path.join(ROOT, p)
    if os.path.exists(p):
        put("config_toml", os.path.basename(p).replace(".toml", ""), open(p, "rb").read())

# netbox_payload: the recorded NetBox bodies.
for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/netbox/*.json"))):
    put("netbox_payload", os.path.basename(p).replace(".json", ""), open(p, "rb").read())
put("netbox_payload", "job", b'{"event": "job_started", "timestamp": "2026-11-23 15:30:21+00:00", "model": "job", "username": null, "request_id": null, "data": {"id": 7, "url": "/api/core/jobs/7/"}}')

# netbox_fast: the same bodies, plus one exercising every JSON form the fast scanner must check.
for p in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/netbox/*.json"))):
    put("netbox_fast", os.path.basename(p).replace(".json", ""), open(p, "rb").read())
put("netbox_fast", "job", b'{"event": "job_started", "timestamp": "2026-11-23 15:30:21+00:00", "model": "job", "username": null, "request_id": null, "data": {"id": 7, "url": "/api/core/jobs/7/"}}')
put("netbox_fast", "grammar", b'{"event": "created", "timestamp": "2026-11-23 15:30:21+00:00", "model": null, "request_id": null, "data": {"id": "7", "url": "\\/api\\/x", "x": [0, -0.5e+10, 1E-3, true, false, null, "\\ud800\\u00e9\\n\\t\\"\\\\\\/\\b\\f\\r", {"\\udc00": [[[]]], "": {}}]}, "request": {"id": "327C526C42B3446BB86D9A919F1DC429", "method": "POST", "path": null, "user": "\\u00e9"}, "snapshots": {"prechange": {"a": [1]}, "postchange": null, "other": [1, {"b": 2}]}, "context": {"k": [1.5, "v"]}}')

# forwarded: "<peer>\n<proxies>\n<header lines>".
put("forwarded", "xff", "10.0.0.2\n10.0.0.0/8\nX-Forwarded-For: 6.6.6.6, 198.51.100.7, 10.0.0.5\n")
put("forwarded", "forwarded", "::ffff:10.0.0.2\n10.0.0.0/8, 127.0.0.1\nForwarded: for=\"[2001:db8::7]:4711\";proto=https, for=10.0.0.3\n")
put("forwarded", "both", "127.0.0.1\n127.0.0.0/8,::1\nX-Forwarded-For: unknown, 192.0.2.60:8080\nForwarded: for=192.0.2.43, for=_hidden\n")
put("forwarded", "untrusted", "203.0.113.9\n10.0.0.0/8\nx-forwarded-for: 1.1.1.1\n")

# spool_frame: valid records (format in src/forward/spool/frame.rs), so fuzzing starts past the
# checksum; crc32c (Castagnoli) written out here to need nothing beyond the standard library.
def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF

def spool_record(seq, body, optional, nanos=5):
    import struct
    field = lambda b: struct.pack("<I", len(b)) + b
    presence = sum(1 << i for i, v in enumerate(optional) if v is not None)
    p = struct.pack("<qI", 1700000000, nanos) + bytes([presence]) + field(b"/netbox") + field(b"netbox")
    p += b"".join(field(v) for v in optional if v is not None) + field(body)
    after = struct.pack("<IQ", len(p), seq) + bytes(range(16)) + p
    return b"WLSP\x01\x00\x00\x00" + struct.pack("<I", crc32c(after)) + after

netbox = open(os.path.join(ROOT, "tests/fixtures/netbox/v4.6.8-created.json"), "rb").read()
put("spool_frame", "netbox", spool_record(1, netbox, [b"dcim.site.created", None, b"application/json", b"192.0.2.10"]))
put("spool_frame", "all-fields", spool_record(2, b"{}", [b"push", b"d-1", b"application/json", b"192.0.2.1"]))
put("spool_frame", "bare", spool_record(3, b"", [None, None, None, None], nanos=0))
put("spool_frame", "binary", spool_record(4, bytes(range(256)), [b"x", None, b"application/octet-stream", None]))
