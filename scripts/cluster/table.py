#!/usr/bin/env python3
"""table.py OUT MODE ROUTER...: the live table (qsteer-load --json, OUT/MODE-R.json)
beside qsteer-sim's prediction for the same arrivals (OUT/sim-R.json), with the
error per metric ((live - sim) / sim), and the routers' ranks on p99 TTFT both ways."""
import json, os, sys

out, mode, routers = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = [("ttft_p50_ms", "TTFT p50"), ("ttft_p99_ms", "TTFT p99"), ("tpot_p99_ms", "TPOT p99"),
        ("e2e_mean_ms", "E2E mean"), ("slo_attainment", "SLO att."), ("goodput_rps", "goodput")]
def load(p):
    try:
        with open(p) as f: return json.load(f)
    except (OSError, ValueError): return None
rows = []
print("live (%s) vs simulated, same arrivals; ms, attainment fraction, goodput req/s; err = (live-sim)/sim"
      % ("qsteer-dp on af_packet" if mode == "dp" else "qsteer-xdp generic"))
print("%-6s %-5s" % ("router", "") + "".join("%12s" % c[1] for c in cols) + "   answered")
for r in routers:
    live, sim = load(os.path.join(out, "%s-%s.json" % (mode, r))), load(os.path.join(out, "sim-%s.json" % r))
    if live is None or sim is None:
        print("%-6s missing %s" % (r, "live" if live is None else "sim")); continue
    print("%-6s %-5s" % (r, "live") + "".join("%12.2f" % live[k] for k, _ in cols) +
          "   %d/%d" % (live["answered"], live["scheduled"]))
    print("%-6s %-5s" % ("", "sim") + "".join("%12.2f" % sim[k] for k, _ in cols))
    print("%-6s %-5s" % ("", "err") + "".join(
        "%11.1f%%" % (100.0 * (live[k] - sim[k]) / sim[k]) if sim[k] else "%12s" % "-" for k, _ in cols))
    rows.append((r, live["ttft_p99_ms"], sim["ttft_p99_ms"]))
if len(rows) > 1:
    lr = [r for r, _, _ in sorted(rows, key=lambda x: x[1])]
    sr = [r for r, _, _ in sorted(rows, key=lambda x: x[2])]
    print("rank on TTFT p99, live: %s; sim: %s; %s" % (" < ".join(lr), " < ".join(sr),
          "same order" if lr == sr else "order differs"))
