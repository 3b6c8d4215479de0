#!/usr/bin/env python3
"""watch_check.py WATCH.py - scripts/cluster/watch.py's kill accounting against a fake
control socket that replays a scripted timeline (suite 'cluster'; no root, no
dataplane). Each {"cmd":"backends"} answer is the timeline's next row; {"cmd":"stats"}
answers that row's fallback counter. The timeline: backend 3 fresh, then masked; a
send while the fallback decided (counter up) within its heard window, one by the
router (counter flat), one by the fallback when its report was 150 ms old. The
watcher must count them as after_mask 3, router_after_mask 1, late_fallback 1, and
nothing sent before the mask as after it."""
import json, os, socket, subprocess, sys, tempfile, threading

# (fresh, report_age_ms, sent, fallback counter) per backends poll
ROWS = [(1, 3, 10, 0)] * 3 + [(1, 8, 11, 0),  # a send before the mask
        (0, 12, 11, 0), (0, 17, 11, 0),        # masked
        (0, 22, 12, 1),                         # the fallback, heard 17 ms before
        (0, 27, 12, 1), (0, 32, 13, 1),         # the router: counter flat
        (0, 150, 13, 1), (0, 155, 14, 2)]       # the fallback, 150 ms of silence


def serve(path):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    c, _ = srv.accept()
    f = c.makefile("rwb")
    i = -1
    for line in f:
        cmd = json.loads(line)["cmd"]
        if cmd == "backends":
            i += 1
            fresh, age, sent, _ = ROWS[min(i, len(ROWS) - 1)]
            ans = {"backends": [{"id": 3, "fresh": fresh, "report_age_ms": age, "sent": sent,
                                 "waiting": 0, "running": 1}]}
        else:
            ans = {"counters": {"fallback": ROWS[min(max(i, 0), len(ROWS) - 1)][3]}}
        f.write((json.dumps(ans) + "\n").encode())
        f.flush()


def main():
    d = tempfile.mkdtemp(prefix="qsteer-watch.")
    sock = os.path.join(d, "ctl.sock")
    threading.Thread(target=serve, args=(sock,), daemon=True).start()
    while not os.path.exists(sock):
        pass
    victim = subprocess.Popen(["sleep", "60"])
    out = subprocess.run([sys.executable, sys.argv[1], sock, "3", str(victim.pid), "kill",
                          os.path.join(d, "tl.csv"), "100"], capture_output=True, text=True,
                         timeout=60)
    victim.wait()
    res = json.loads(out.stdout)
    want = {"after_mask": 3, "router_after_mask": 1, "late_fallback": 1, "sent_after": 4}
    bad = {k: (res.get(k), v) for k, v in want.items() if res.get(k) != v}
    if bad:
        print("FAIL: watch.py counted (got, want) %s: %s" % (bad, out.stdout.strip()))
        return 1
    print("PASS: %s" % out.stdout.strip())
    return 0


sys.exit(main())
