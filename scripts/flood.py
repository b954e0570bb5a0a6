#!/usr/bin/env python3
"""What a flood of stalled bodies and a crowd of idle keep-alive connections cost in memory.

    scripts/flood.py [--bin target/release/webhook-listener] [--clients 1024] [--idle 10000]
                     [--top 'max_buffered_bytes = 67108864']

Starts the binary on 127.0.0.1:0 in a temp dir (one NetBox hook, request_timeout_secs = 60 so
nothing is cut off while it is measured), then:

1. flood: --clients connections each declare Content-Length 1,000,000, send 999,999 bytes with a
   bogus signature and wait. Prints RSS before, the peak (VmHWM) and RSS while they hold, how they
   were answered, and RSS 1, 5 and 10 s after they all close.
2. idle: a fresh server; --idle connections each make one GET /healthz request and then stay open
   and idle (keep-alive). Prints RSS before and with them, and the cost per connection.

The soft and hard limit on open files are raised to 65536 for itself and the server (what
`ulimit -n 65536` does); that needs root if the hard limit is lower. Python 3 standard library only.
"""

import argparse
import os
import re
import resource
import selectors
import socket
import subprocess
import sys
import tempfile
import time

NOFILE = 65536


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, max(hard, NOFILE)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(NOFILE, hard), hard))


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


class Server:
    def __init__(self, binary, top):
        self.dir = tempfile.TemporaryDirectory(prefix="flood.")
        config = os.path.join(self.dir.name, "config.toml")
        with open(config, "w") as f:
            f.write(
                f'listen = "127.0.0.1:0"\nrequest_timeout_secs = 60\n{top}\n'
                f'[log]\nfile = "{self.dir.name}/events.log"\n'
                '[[hooks]]\npath = "/nb"\nprovider = "netbox"\nsecrets = ["my-webhook-secret"]\n'
            )
        self.stderr = open(os.path.join(self.dir.name, "stderr"), "w+")
        self.proc = subprocess.Popen(
            [binary, "--config", config],
            cwd=self.dir.name,
            env={**os.environ, "RUST_LOG": "warn,webhook_listener::app=info"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            self.stderr.seek(0)
            m = re.search(r"listen=\"?([0-9.]+):([0-9]+)", self.stderr.read())
            if m:
                self.addr = (m.group(1), int(m.group(2)))
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stderr.seek(0)
        sys.exit(f"server did not start:\n{self.stderr.read()}")

    def kib(self, field="VmRSS"):
        return status_kib(self.proc.pid, field)

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.stderr.close()
        self.dir.cleanup()


def flood(server, clients, timeout=20.0):
    """Each client sends the head and 999,999 of 1,000,000 body bytes, then waits for an answer or
    the timeout. Returns the open sockets and a count of how each was answered."""
    head = (
        b"POST /nb HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        b"X-Hook-Signature: 00\r\nContent-Length: 1000000\r\n\r\n"
    )
    payload = memoryview(head + b" " * 999_999)
    sel = selectors.DefaultSelector()
    state = {}
    for _ in range(clients):
        # Connected one by one (blocking), so a full accept backlog cannot refuse any of them.
        s = socket.create_connection(server.addr, timeout=10)
        s.setblocking(False)
        state[s] = {"sent": 0, "answer": b""}
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE)
    answers = {}
    deadline = time.time() + timeout
    pending = set(state)
    last, quiet_since = None, time.time()
    while pending and time.time() < deadline:
        for key, ev in sel.select(timeout=0.2):
            s, st = key.fileobj, state[key.fileobj]
            if ev & selectors.EVENT_WRITE and st["sent"] < len(payload):
                try:
                    st["sent"] += s.send(payload[st["sent"] : st["sent"] + 262144])
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    st["sent"] = len(payload)
                if st["sent"] >= len(payload):
                    sel.modify(s, selectors.EVENT_READ)
            if ev & selectors.EVENT_READ:
                try:
                    chunk = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError as e:
                    chunk, why = b"", f"closed without an answer ({e.strerror})"
                else:
                    why = "closed without an answer"
                if not chunk:
                    answers[why] = answers.get(why, 0) + 1
                    sel.unregister(s)
                    pending.discard(s)
                    continue
                st["answer"] += chunk
                if b"\r\n" in st["answer"] and s in pending:
                    status = st["answer"].split(b" ", 2)[1].decode()
                    answers[status] = answers.get(status, 0) + 1
                    pending.discard(s)
                    sel.unregister(s)
        # The clients that fit (all of them, without a budget) are answered only at the server's
        # timeout: once every byte is out and nothing changed for 3 s, they are what holds memory.
        if progress(state, answers) != last:
            last, quiet_since = progress(state, answers), time.time()
        elif all(st["sent"] >= len(payload) or s not in pending for s, st in state.items()) and time.time() - quiet_since > 3:
            break
    answers["waiting (no answer yet)"] = len(pending)
    sel.close()
    return list(state), answers


def progress(state, answers):
    return sum(st["sent"] for st in state.values()), sum(answers.values())


def idle(server, n):
    """n connections, each one GET /healthz answered, then left open and idle."""
    socks = []
    req = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"
    sel = selectors.DefaultSelector()
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(server.addr)
        sel.register(s, selectors.EVENT_WRITE, b"")
        socks.append(s)
        # Keep the accept backlog short: connect in batches of 500 and finish each batch.
        if len(socks) % 500 == 0 or i == n - 1:
            finish(sel, req)
    return socks


def finish(sel, req):
    deadline = time.time() + 30
    while sel.get_map() and time.time() < deadline:
        for key, ev in sel.select(timeout=0.5):
            s = key.fileobj
            if ev & selectors.EVENT_WRITE:
                s.send(req)
                sel.modify(s, selectors.EVENT_READ, b"")
            else:
                got = key.data + s.recv(4096)
                if b"\r\n\r\n" in got and got.rstrip().endswith(b"}"):
                    sel.unregister(s)
                else:
                    sel.modify(s, selectors.EVENT_READ, got)
    if sel.get_map():
        sys.exit(f"{len(sel.get_map())} idle connections got no /healthz answer in 30 s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default="target/release/webhook-listener")
    ap.add_argument("--clients", type=int, default=1024)
    ap.add_argument("--idle", type=int, default=10000)
    ap.add_argument("--top", default="", help="extra top-level config keys")
    ap.add_argument("--skip-flood", action="store_true")
    ap.add_argument("--skip-idle", action="store_true")
    a = ap.parse_args()
    raise_nofile()
    print(f"binary {a.bin}; config extra {a.top!r}; open-file limit {resource.getrlimit(resource.RLIMIT_NOFILE)[0]}")

    if not a.skip_flood:
        srv = Server(a.bin, a.top)
        time.sleep(0.5)
        before = srv.kib()
        t0 = time.time()
        socks, answers = flood(srv, a.clients)
        held, peak = srv.kib(), srv.kib("VmHWM")
        print(f"flood {a.clients} x 1,000,000 declared, 999,999 sent: answers {answers} after {time.time() - t0:.1f} s")
        print(f"  RSS before {mib(before)}, peak {mib(peak)}, while held {mib(held)}")
        for s in socks:
            s.close()
        closed = time.time()
        readings = []
        for at in (1, 5, 10):
            time.sleep(max(0, closed + at - time.time()))
            readings.append(f"{at} s: {mib(srv.kib())}")
        print(f"  RSS after the clients closed: {', '.join(readings)}")
        srv.stop()

    if not a.skip_idle:
        srv = Server(a.bin, a.top)
        time.sleep(0.5)
        before = srv.kib()
        socks = idle(srv, a.idle)
        time.sleep(1)
        with_idle = srv.kib()
        per = (with_idle - before) * 1024 / a.idle
        print(f"idle {a.idle} keep-alive connections after one GET each: RSS {mib(before)} -> {mib(with_idle)}, {per / 1024:.1f} KiB per connection")
        for s in socks:
            s.close()
        srv.stop()


if __name__ == "__main__":
    main()
