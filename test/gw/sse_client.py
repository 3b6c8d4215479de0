#!/usr/bin/python3
"""sse_client.py - test/gw's client for what curl cannot do on cue.

  sse_client.py disconnect HOST PORT PATH BODY
      POST BODY, read the response until the first SSE event (or, with a
      held-back engine, until the status line), then close the connection: a
      client that goes away mid-stream.
  sse_client.py disconnect-after-open HOST PORT PATH BODY ENGINE_LOG
      the same, closing once the engine has logged one more "open" line than
      before (for an engine that sends nothing)
  sse_client.py reports PORT_FILE OUT
      listen for QRP reports on a UDP port of loopback (written to PORT_FILE),
      keep the latest decoded one in OUT: "waiting running kv_used kv_total
      flags received completed"
  sse_client.py latency GW_URL ENGINE_URL N
      N non-streaming completions, alternately through the gateway and straight
      to the engine, one at a time; prints median and p99 of each, in ms.
Standard library only.
"""
import http.client
import json
import socket
import sys
import time
import urllib.parse


def disconnect(host, port, path, body):
    s = socket.create_connection((host, int(port)), timeout=60)
    data = body.encode()
    s.sendall(("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (path, host, len(data))).encode() + data)
    got = b""
    want = b"data:" if b"HANG" not in data else b"\r\n\r\n"
    while want not in got:
        chunk = s.recv(4096)
        if not chunk:
            print("disconnect: connection closed before %r" % want)
            return 1
        got += chunk
    s.close()
    print("disconnect: closed after %d bytes" % len(got))
    return 0


def opens(path):
    try:
        with open(path) as f:
            return sum(1 for l in f if l.startswith("open "))
    except OSError:
        return 0


def disconnect_after_open(host, port, path, body, log):
    before = opens(log)
    s = socket.create_connection((host, int(port)), timeout=60)
    data = body.encode()
    s.sendall(("POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (path, host, len(data))).encode() + data)
    deadline = time.monotonic() + 120
    while opens(log) <= before:
        if time.monotonic() > deadline:
            print("disconnect-after-open: the engine never opened the request")
            return 1
        time.sleep(0.02)
    s.close()
    print("disconnect-after-open: closed")
    return 0


def reports(port_file, out):
    import os
    import struct
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % s.getsockname()[1])
    os.replace(port_file + ".tmp", port_file)
    while True:
        d = s.recv(2048)
        if len(d) < 88 or d[:2] != b"QS" or d[3] != 3:
            continue
        (bid, flags, waiting, running, kv_used, kv_total, tps, ttft, pend, rcv, done,
         ns) = struct.unpack(">HHIIIIIIIQQQ", d[32:88])
        with open(out + ".tmp", "w") as f:
            f.write("%d %d %d %d %d %d %d\n" % (waiting, running, kv_used, kv_total, flags,
                                               rcv, done))
        os.replace(out + ".tmp", out)


def pct(xs, p):
    import math
    xs = sorted(xs)
    return xs[max(0, math.ceil(p * len(xs)) - 1)]


def latency(gw, eng, n):
    body = json.dumps({"model": "fake", "prompt": "hello world", "max_tokens": 8})
    conns = {}
    res = {"gw": [], "engine": []}
    for name, url in (("gw", gw), ("engine", eng)):
        u = urllib.parse.urlparse(url)
        conns[name] = (u.hostname, u.port)
    for i in range(2 * n + 4):
        name = "gw" if i % 2 == 0 else "engine"
        host, port = conns[name]
        c = http.client.HTTPConnection(host, port, timeout=60)
        t0 = time.perf_counter()
        c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        d = r.read()
        t1 = time.perf_counter()
        c.close()
        if r.status != 200 or b"t7" not in d:
            print("latency: bad answer from %s: %d %r" % (name, r.status, d[:200]))
            return 1
        if i >= 4:  # warm-up
            res[name].append((t1 - t0) * 1e3)
    for name in ("engine", "gw"):
        xs = res[name]
        print("%-7s n=%d median %.3f ms p99 %.3f ms" % (name, len(xs), pct(xs, 0.5),
                                                        pct(xs, 0.99)))
    print("added   median %.3f ms p99 %.3f ms" % (pct(res["gw"], 0.5) - pct(res["engine"], 0.5),
                                                  pct(res["gw"], 0.99) -
                                                  pct(res["engine"], 0.99)))
    return 0


if __name__ == "__main__":
    if sys.argv[1] == "disconnect":
        sys.exit(disconnect(*sys.argv[2:6]))
    if sys.argv[1] == "disconnect-after-open":
        sys.exit(disconnect_after_open(*sys.argv[2:7]))
    if sys.argv[1] == "reports":
        sys.exit(reports(sys.argv[2], sys.argv[3]))
    if sys.argv[1] == "latency":
        sys.exit(latency(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    sys.exit(2)
