#!/usr/bin/env python3
"""hop.py OUT MODE: the steering hop's cost from the per-request CSVs of the same
arrivals sent straight to agent 0 (MODE-hop-directK.csv) and through the dataplane
(MODE-hop-steeredK.csv), K = 1, 2. TTFT here is the time from the scheduled send to
the first-token datagram: the dataplane's hop is the difference."""
import csv, os, sys

out, mode = sys.argv[1], sys.argv[2]
def ttfts(name):
    v = []
    for k in (1, 2):
        p = os.path.join(out, "%s-hop-%s%d.csv" % (mode, name, k))
        if not os.path.exists(p): continue
        with open(p) as f:
            v += [float(r["ttft_ms"]) * 1000.0 for r in csv.DictReader(f) if r["ttft_ms"]]
    return sorted(v)
def pct(v, q): return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")
d, s = ttfts("direct"), ttfts("steered")
print("steering hop (%s): lone 32-token prefills on agent 0; TTFT in microseconds" % mode)
print("%-26s %8s %10s %10s" % ("", "n", "p50", "p99"))
print("%-26s %8d %10.0f %10.0f" % ("straight to the agent", len(d), pct(d, .5), pct(d, .99)))
print("%-26s %8d %10.0f %10.0f" % ("through the dataplane", len(s), pct(s, .5), pct(s, .99)))
print("%-26s %8s %10.0f %10.0f" % ("hop (difference)", "", pct(s, .5) - pct(d, .5), pct(s, .99) - pct(d, .99)))
