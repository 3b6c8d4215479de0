#!/usr/bin/env python3
"""The agents' report lateness, summed over their exit lines, as the simulator's
[scenario] report_late_us knots (docs/sim.md, "Report lateness").

usage: late.py LOG:FROM_LINE ...   (each agent log, and the line a mode began at)

Each qsteer-agent prints at exit `qsteer-agent: report lateness us: LOWER:COUNT ...
max US` (50 us buckets, agent/serve.c). Prints the knots on the first line (empty
when no agent said anything) and a summary for people on the second.
"""
import sys

TAG = "qsteer-agent: report lateness us: "
# dense where a report's lateness reaches the 5 ms interval (about the 0.999th):
# those are the reports that mask a backend in the dataplane for a moment
QUANTILES = (0.5, 0.9, 0.99, 0.995, 0.998, 0.999, 0.9993, 0.9995, 0.9997, 0.9998,
             0.9999, 0.99995, 1.0)
BUCKET_US = 50
LAST_US = 49950  # the agent's last bucket holds everything from here on (agent.h)


def main(args):
    hist, top, lines = {}, 0, 0
    for a in args:
        path, _, first = a.rpartition(":")
        try:
            rows = open(path, errors="replace").read().splitlines()[int(first):]
        except OSError:
            continue
        for row in rows:
            if not row.startswith(TAG):
                continue
            f = row[len(TAG):].split()
            if len(f) < 2 or f[-2] != "max":
                print("late.py: %s: a truncated lateness line, left out" % path, file=sys.stderr)
                continue
            try:
                got = [tuple(int(x) for x in kv.split(":")) for kv in f[:-2]]
                got_top = int(f[-1])
                if any(len(g) != 2 or g[0] < 0 or g[1] < 0 for g in got) or got_top < 0:
                    raise ValueError("not LOWER:COUNT")
            except ValueError:
                print("late.py: %s: a malformed lateness line, left out: %s" % (path, row[:120]),
                      file=sys.stderr)
                continue
            for lo, n in got:
                hist[lo] = hist.get(lo, 0) + n
            top = max(top, got_top)
            lines += 1
    total = sum(hist.values())
    if total == 0:
        print("")
        print("no lateness measured (no agent exit line)")
        return
    knots, prev = [], 0.0
    keys = sorted(hist)
    for q in QUANTILES:
        want = q * total
        acc, us = 0, 0.0
        for lo in keys:
            n = hist[lo]
            if acc + n >= want:
                # linear inside the bucket, which ends at the largest seen if that is
                # inside it or the bucket is the agent's open-ended last one
                hi = top if lo >= LAST_US else min(lo + BUCKET_US, top)
                us = lo + (hi - lo) * ((want - acc) / n)
                break
            acc += n
        us = top if q == 1.0 else min(max(us, prev), top)
        knots.append("%g:%.0f" % (q, us))
        prev = us
    over = sum(n for lo, n in hist.items() if lo >= 5000)
    print(",".join(knots))
    print("%d reports from %d agent runs: p99 %s us, p99.9 %s us, %.3f%% 5 ms or more late, "
          "max %d us" % (total, lines, knots[2].split(":")[1], knots[5].split(":")[1],
                          100.0 * over / total, top))


if __name__ == "__main__":
    main(sys.argv[1:])
