#!/usr/bin/env python3
"""watch.py SOCK ID ARG kill|restart TIMELINE.csv [HEARD_MS]: poll the dataplane's
control socket ({"cmd":"backends"}, one JSON line each way, docs/control.md) every
~5 ms and time backend ID against T0, the moment of the kill or the restart.
kill: ARG is the agent's pid; once connected, the watcher kills it (SIGKILL) itself,
so T0 is exact; then until it has been not fresh for 1 s (at most 15 s); prints
  masked_ms (first poll seeing it not fresh), last_sent_ms (last poll at which its
  sent count grew), sent_after (requests steered to it after T0), and of the
  requests steered to it between two polls that both came after the mask:
  after_mask (all), router_after_mask (in an interval where the dataplane's
  fallback counter did not grow: the router's own choice, which the mask forbids)
  and late_fallback (sent when its report was already older than HEARD_MS, default
  100: the fallback, which may use a backend heard from within ten mask ages
  (router_view.h QS_RVIEW_HEARD_AGES) when every backend is masked, must not).
  A loaded host makes every agent's report late at once: the fallback then decides,
  and a just-killed agent heard from 10 ms ago is as good a choice for it as any.
restart: ARG is a directory: the watcher connects, creates ARG/ready, and takes T0
(ns) from ARG/go, which the caller writes just before it starts the agent; then until it is fresh and its sent count grew (at most 20 s); prints
  fresh_ms, steered_ms. Every poll goes to TIMELINE.csv."""
import json, socket, sys, time

import os, signal
sock, bid, arg, what, tl = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
heard_ms = float(sys.argv[6]) if len(sys.argv) > 6 else 100.0
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.connect(sock); f = s.makefile("rwb")
def poll():
    f.write(b'{"cmd":"backends"}\n'); f.flush()
    for b in json.loads(f.readline())["backends"]:
        if b["id"] == bid: return b
    raise SystemExit("no backend %d" % bid)
def fallbacks():
    f.write(b'{"cmd":"stats"}\n'); f.flush()
    return json.loads(f.readline())["counters"]["fallback"]
ms = lambda: (time.time_ns() - t0) / 1e6
out = open(tl, "w"); out.write("ms,fresh,report_age_ms,sent,waiting,running\n")
b = poll()
res = {"waiting_at_t0": b["waiting"], "running_at_t0": b["running"]}
if what == "kill":
    t0 = time.time_ns(); os.kill(int(arg), signal.SIGKILL)
else:
    open(os.path.join(arg, "ready"), "w").close()
    for _ in range(2000):  # the caller writes go within 10 s
        try: t0 = int(open(os.path.join(arg, "go")).read()); break
        except (OSError, ValueError): time.sleep(0.005)
    else: raise SystemExit("no go file")
b = poll(); sent0 = b["sent"]; last = sent0
res["sent_at_t0"] = sent0
if what == "kill":
    fb = fallbacks(); age = b.get("report_age_ms"); masked_before = False
    res.update(after_mask=0, router_after_mask=0, late_fallback=0)
limit = 15000 if what == "kill" else 20000
while ms() < limit:
    b = poll(); t = ms()
    out.write("%.1f,%d,%s,%d,%d,%d\n" % (t, b["fresh"], b.get("report_age_ms"), b["sent"], b["waiting"], b["running"]))
    if what == "kill":
        fb_now = fallbacks()
        grew = b["sent"] - last
        if grew:
            last = b["sent"]; res["last_sent_ms"] = round(t, 1)
            if masked_before:  # sent after a poll that already saw the mask
                res["after_mask"] += grew
                if fb_now == fb: res["router_after_mask"] += grew
                if age is not None and age > heard_ms: res["late_fallback"] += grew
        fb, age = fb_now, b.get("report_age_ms")
        if not b["fresh"] and "masked_ms" not in res: res["masked_ms"] = round(t, 1)
        masked_before = "masked_ms" in res
        if "masked_ms" in res and t - res["masked_ms"] >= 1000: break
    else:
        if b["fresh"] and "fresh_ms" not in res: res["fresh_ms"] = round(t, 1)
        if b["fresh"] and b["sent"] != sent0: res["steered_ms"] = round(t, 1); break
    time.sleep(0.005)
res["sent_after"] = b["sent"] - sent0
print(json.dumps(res))
