#!/usr/bin/env python3
"""table.py OUT MODE ROUTER...: the live table (qsteer-load --json, OUT/MODE-R.json and,
with --live-runs K, OUT/MODE-R-runK.json) beside qsteer-sim's prediction for the same
arrivals (OUT/sim-MODE-R.json, or OUT/sim-R.json in an older run's directory), with
the error per metric ((live - sim) / sim), and the routers' ranks on p99 TTFT both
ways.

With several live runs the live row is the median of each metric over the runs.
Rows simP/errP: the simulator at the same seed over report phase seeds
(OUT/sim-MODE-R-phaseK.json): the median and range, and the live median's error against
it. A report-driven router's trajectory depends on when the agents' reports land
against the arrivals, which neither the live run nor the simulator controls, so one
live run against one simulation compares two draws; the medians compare the two
distributions, and the live range shows how far one live run strays from its own
median. Rows sim*/err*: the simulator with the live run's routing replayed
(cluster-replay, OUT/MODE-R-replay.txt): the error left when the decisions are the
same. The simulator's report transit for the mode (OUT/MODE-transit-us.txt, cluster.sh
--sim-transit) heads the table."""
import json, os, random, sys

out, mode, routers = sys.argv[1], sys.argv[2], sys.argv[3:]
cols = [("ttft_p50_ms", "TTFT p50"), ("ttft_p99_ms", "TTFT p99"), ("tpot_p99_ms", "TPOT p99"),
        ("e2e_mean_ms", "E2E mean"), ("slo_attainment", "SLO att."), ("goodput_rps", "goodput")]
P50, P99 = "ttft_p50_ms", "ttft_p99_ms"


def load(p):
    try:
        with open(p) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def sim_path(r, suffix=""):
    p = os.path.join(out, "sim-%s-%s%s.json" % (mode, r, suffix))
    return p if os.path.exists(p) else os.path.join(out, "sim-%s%s.json" % (r, suffix))


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


def err(a, b):
    return "%11.1f%%" % (100.0 * (a - b) / b) if b else "%12s" % "-"


def row(router, label, vals):
    return "%-6s %-5s" % (router, label) + "".join(
        "%12.2f" % v if isinstance(v, float) or isinstance(v, int) else "%12s" % v for v in vals)


rows = []
summary = []
phase_p99 = {}  # router -> its p99 TTFT over the report phasings
bands = []  # (router, live median inside the simulator's band on p50 and p99)
BOOT = 4000
print("live (%s) vs simulated, same arrivals; ms, attainment fraction, goodput req/s; err = (live-sim)/sim"
      % ("qsteer-dp on af_packet" if mode == "dp" else "qsteer-xdp generic"))
try:
    print("the simulator's report transit: %s us (docs/sim.md, \"Report transit\")"
          % open(os.path.join(out, "%s-transit-us.txt" % mode)).read().strip())
except OSError:
    pass
print("%-6s %-5s" % ("router", "") + "".join("%12s" % c[1] for c in cols) + "   answered")
for r in routers:
    runs = [load(os.path.join(out, "%s-%s.json" % (mode, r)))]
    k = 2
    while os.path.exists(os.path.join(out, "%s-%s-run%d.json" % (mode, r, k))):
        runs.append(load(os.path.join(out, "%s-%s-run%d.json" % (mode, r, k))))
        k += 1
    runs = [x for x in runs if x]
    sim = load(sim_path(r))
    if not runs or sim is None:
        print("%-6s missing %s" % (r, "sim" if runs else "live"))
        continue
    live = {c: median([x[c] for x in runs]) for c, _ in cols}
    answered = sum(x["answered"] for x in runs)
    scheduled = sum(x["scheduled"] for x in runs)
    print(row(r, "live", [live[c] for c, _ in cols]) + "   %d/%d" % (answered, scheduled))
    if len(runs) > 1:
        lo = {c: min(x[c] for x in runs) for c in (P50, P99)}
        hi = {c: max(x[c] for x in runs) for c in (P50, P99)}
        print("%-6s %-5s" % ("", "") + "   median of %d live runs: p50 %.0f..%.0f, p99 %.0f..%.0f"
              % (len(runs), lo[P50], hi[P50], lo[P99], hi[P99]))
    print(row("", "sim", [sim[c] for c, _ in cols]))
    print("%-6s %-5s" % ("", "err") + "".join(err(live[c], sim[c]) for c, _ in cols))
    ph = [x for x in (load(sim_path(r, "-phase%d" % k)) for k in range(1, 201)) if x]
    med = None
    if ph:
        med = {c: median([x[c] for x in ph]) for c, _ in cols}
        print(row("", "simP", [med[c] for c, _ in cols]))
        print("%-6s %-5s" % ("", "") + "   %d report phasings: p50 %.0f..%.0f, p99 %.0f..%.0f" % (
            len(ph), min(x[P50] for x in ph), max(x[P50] for x in ph),
            min(x[P99] for x in ph), max(x[P99] for x in ph)))
        print("%-6s %-5s" % ("", "errP") + "".join(err(live[c], med[c]) for c, _ in cols))
        phase_p99[r] = [x[P99] for x in ph]
        # How far a median of this many live runs may stray from simP by chance alone:
        # the central 95% of the median of len(runs) phasings drawn with replacement.
        rng = random.Random(1)
        band = {}
        for c in (P50, P99):
            vals = [x[c] for x in ph]
            meds = sorted(median([rng.choice(vals) for _ in runs]) for _ in range(BOOT))
            band[c] = (meds[int(0.025 * BOOT)], meds[int(0.975 * BOOT) - 1])
        inside = all(band[c][0] <= live[c] <= band[c][1] for c in (P50, P99))
        print("%-6s %-5s" % ("", "") + "   simulator's 95%% band for a median of %d run(s): p50 %.0f..%.0f"
              " (%+.1f%%..%+.1f%%), p99 %.0f..%.0f (%+.1f%%..%+.1f%%); live %s" % (
                  len(runs), band[P50][0], band[P50][1], 100 * (band[P50][0] / med[P50] - 1),
                  100 * (band[P50][1] / med[P50] - 1), band[P99][0], band[P99][1],
                  100 * (band[P99][0] / med[P99] - 1), 100 * (band[P99][1] / med[P99] - 1),
                  "inside" if inside else "OUTSIDE"))
        bands.append((r, inside))
    rep = replayed(os.path.join(out, "%s-%s-replay.txt" % (mode, r)))
    if rep:
        # the simulator on live run 1's own routing (cluster-replay): no router divergence
        print(row("", "sim*", list(rep)))
        print("%-6s %-5s" % ("", "err*") + err(runs[0][P50], rep[0]) + err(runs[0][P99], rep[1]))
    rows.append((r, live[P99], sim[P99], med[P99] if med else sim[P99]))
    if med:
        summary.append((r, 100.0 * (live[P50] - med[P50]) / med[P50],
                        100.0 * (live[P99] - med[P99]) / med[P99]))
if len(rows) > 1:
    lr = [r for r, _, _, _ in sorted(rows, key=lambda x: x[1])]
    sr = [r for r, _, _, _ in sorted(rows, key=lambda x: x[2])]
    pr = [r for r, _, _, _ in sorted(rows, key=lambda x: x[3])]
    print("rank on TTFT p99, live: %s; sim: %s; %s" % (" < ".join(lr), " < ".join(sr),
          "same order" if lr == sr else "order differs"))
    print("rank on TTFT p99, live: %s; simP: %s; %s" % (" < ".join(lr), " < ".join(pr),
          "same order" if lr == pr else "order differs"))
# Which pairs the simulator itself tells apart: a strict order over routers whose
# phasing spreads overlap compares two draws of a near-tie. A pair is resolved when one
# router's p99 is below the other's in at least RESOLVED of the (phasing, phasing)
# pairs; the live medians must then order it the same way.
RESOLVED = 0.9
live_p99 = {r: lv for r, lv, _, _ in rows}
pairs = [(a, b) for i, a in enumerate(live_p99) for b in list(live_p99)[i + 1:]
         if a in phase_p99 and b in phase_p99]
if pairs:
    res, agree, differ = 0, 0, []
    for a, b in pairs:
        A, B = phase_p99[a], phase_p99[b]
        below = sum((x < y) + 0.5 * (x == y) for x in A for y in B) / float(len(A) * len(B))
        if RESOLVED > below > 1 - RESOLVED:
            continue
        res += 1
        lo, hi = (a, b) if below >= RESOLVED else (b, a)
        if live_p99[lo] < live_p99[hi]:
            agree += 1
        else:
            differ.append("%s < %s simulated (%.0f%% of phasing pairs), live %.0f vs %.0f ms"
                          % (lo, hi, 100.0 * max(below, 1 - below), live_p99[lo], live_p99[hi]))
    print("pairs on TTFT p99 the simulator resolves (one below the other in >= %.0f%% of phasing "
          "pairs): %d of %d; live in the same order: %d%s" % (
              100 * RESOLVED, res, len(pairs), agree,
              "" if not differ else "; differ: " + "; ".join(differ)))
if bands:
    print("live medians inside the simulator's 95%% band for their number of runs (p50 and p99): "
          "%d of %d%s" % (sum(1 for _, i in bands if i), len(bands),
                          "" if all(i for _, i in bands) else "; outside: " +
                          ", ".join(r for r, i in bands if not i)))
if summary:
    worst = max(max(abs(a), abs(b)) for _, a, b in summary)
    print("largest |errP| on TTFT p50/p99 over the routers: %.1f%%" % worst)
