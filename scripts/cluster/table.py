#!/usr/bin/env python3
"""table.py OUT MODE ROUTER...: the live table (qsteer-load --json, OUT/MODE-R.json)
beside qsteer-sim's prediction for the same arrivals (OUT/sim-R.json), with the
error per metric ((live - sim) / sim), and the routers' ranks on p99 TTFT both ways.
Rows simP/errP (a trace): the median over 10 seeds, which for a trace change only the
agents' report phases, and the range. Rows sim*/err*: the simulator with the live
run's routing replayed (cluster-replay, OUT/MODE-R-replay.txt), i.e. the error left
when the routers' decisions are the same."""
import json, os, sys

out, mode, routers = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = [("ttft_p50_ms", "TTFT p50"), ("ttft_p99_ms", "TTFT p99"), ("tpot_p99_ms", "TPOT p99"),
        ("e2e_mean_ms", "E2E mean"), ("slo_attainment", "SLO att."), ("goodput_rps", "goodput")]
def load(p):
    try:
        with open(p) as f: return json.load(f)
    except (OSError, ValueError): return None
def replayed(p):
    # cluster-replay's "sim backends, same routing" row: n p50 p90 p99 e2e
    try:
        for line in open(p):
            if line.startswith("sim backends, same routing"):
                f = line.split()
                return float(f[5]), float(f[7])
    except (OSError, ValueError, IndexError):
        pass
    return None
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
    ph = [sim] + [x for x in (load(os.path.join(out, "sim-%s-phase%d.json" % (r, k)))
                              for k in range(1, 10)) if x]
    if len(ph) > 1:
        # the simulator over report phases (a trace's other seeds): median [min, max]
        med = [sorted(x[k] for x in ph)[len(ph) // 2] for k in ("ttft_p50_ms", "ttft_p99_ms")]
        print("%-6s %-5s" % ("", "simP") + "%12.2f%12.2f" % tuple(med) +
              "   %d report phasings: p50 %.0f..%.0f, p99 %.0f..%.0f" % (
                  len(ph), min(x["ttft_p50_ms"] for x in ph), max(x["ttft_p50_ms"] for x in ph),
                  min(x["ttft_p99_ms"] for x in ph), max(x["ttft_p99_ms"] for x in ph)))
        print("%-6s %-5s" % ("", "errP") + "".join("%11.1f%%" % (100.0 * (live[k] - v) / v)
              for k, v in zip(("ttft_p50_ms", "ttft_p99_ms"), med)))
    rep = replayed(os.path.join(out, "%s-%s-replay.txt" % (mode, r)))
    if rep:
        # the simulator on the live run's own routing (cluster-replay): no router divergence
        print("%-6s %-5s" % ("", "sim*") + "%12.2f%12.2f" % rep)
        print("%-6s %-5s" % ("", "err*") + "".join("%11.1f%%" % (100.0 * (live[k] - v) / v)
              for k, v in (("ttft_p50_ms", rep[0]), ("ttft_p99_ms", rep[1]))))
    rows.append((r, live["ttft_p99_ms"], sim["ttft_p99_ms"]))
if len(rows) > 1:
    lr = [r for r, _, _ in sorted(rows, key=lambda x: x[1])]
    sr = [r for r, _, _ in sorted(rows, key=lambda x: x[2])]
    print("rank on TTFT p99, live: %s; sim: %s; %s" % (" < ".join(lr), " < ".join(sr),
          "same order" if lr == sr else "order differs"))
