"""prom_fetch.py PORT OUT.json - GET /metrics from 127.0.0.1:PORT (qsteer-dp or
qsteer-xdp), require a 200 with Prometheus text 0.0.4, and write {"body": text,
"m": {sample: value}} for a test's own assertions. Used by test/dp/control.sh and
test/ebpf/live.sh (run inside the daemon's network namespace where it has one)."""
import json
import socket
import sys

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
head, body = data.decode().split("\r\n\r\n", 1)
assert head.startswith("HTTP/1.0 200 OK"), head
assert "text/plain; version=0.0.4" in head, head
m = {}
for line in body.splitlines():
    if line and not line.startswith("#"):
        k, v = line.rsplit(" ", 1)
        m[k] = float(v)
json.dump({"body": body, "m": m}, open(sys.argv[2], "w"))
