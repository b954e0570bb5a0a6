#!/usr/bin/env python3
"""Sends exactly N signed NetBox requests over C keep-alive connections and checks every answer.

For profiling (callgrind counts instructions, so a fixed amount of work gives repeatable totals):
    scripts/fixed_load.py URL SECRET BODY_FILE [N] [C]
"""
import hashlib, hmac, http.client, sys, threading, urllib.parse

url, secret, body_file = sys.argv[1], sys.argv[2], sys.argv[3]
n = int(sys.argv[4]) if len(sys.argv) > 4 else 2000
c = int(sys.argv[5]) if len(sys.argv) > 5 else 4
body = open(body_file, "rb").read()
sig = hmac.new(secret.encode(), body, hashlib.sha512).hexdigest()
u = urllib.parse.urlsplit(url)
counts = {}
lock = threading.Lock()

def worker(k):
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    for _ in range(k):
        conn.request("POST", u.path, body, {"Content-Type": "application/json", "X-Hook-Signature": sig})
        r = conn.getresponse()
        r.read()
        with lock:
            counts[r.status] = counts.get(r.status, 0) + 1

threads = [threading.Thread(target=worker, args=(n // c,)) for _ in range(c)]
for t in threads: t.start()
for t in threads: t.join()
print(counts)
sys.exit(0 if set(counts) == {200} else 1)
