#!/usr/bin/python3
"""inputs.py - which router inputs differ between the live dataplane and the simulator
(docs/cluster.md, "Which inputs differ").

usage: inputs.py LIVE.csv DECISIONS.csv VIEW.csv [EXPLAIN.txt]

LIVE.csv       qsteer-load's per-request file of the run (request_id -> index, backend)
DECISIONS.csv  qsteer-pcap decisions on the run's capture (the live feature rows)
VIEW.csv       cluster-replay --view-out on the same run (the simulator's rows)
EXPLAIN.txt    cluster-replay --explain's output (the decisions the router would
               have taken otherwise on the simulator's view), optional

Prints how often the capture's replay chose what the live dataplane chose, then per
feature (docs/features.md) the share of (decision, candidate) rows where the live
value differs from the simulator's and the mean absolute difference, over all
decisions and over those --explain lists.
"""
import csv
import re
import sys

NAMES = ["prompt", "gen", "priority", "slo", "prefix_hit", "waiting", "running",
         "kv_util", "prefill", "decode_tps", "ttft_p99", "sent_reqs", "sent_tokens",
         "capacity", "global_load", "eligible"]


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    idx, live_be = {}, {}
    for r in csv.DictReader(open(sys.argv[1])):
        idx[int(r["request_id"])] = int(r["index"])
        live_be[int(r["index"])] = r["backend"]
    live, chosen = {}, {}
    for r in csv.DictReader(open(sys.argv[2])):
        rid = int(r["request_id"])
        if rid not in idx:
            continue
        i = idx[rid]
        chosen[i] = r["backend"]
        if r["candidate"]:
            live[(i, int(r["candidate"]))] = [int(r["f%d" % k]) for k in range(16)]
    sim = {}
    for r in csv.DictReader(open(sys.argv[3])):
        sim[(int(r["index"]), int(r["candidate"]))] = [int(r["f%d" % k]) for k in range(16)]
    explained = set()
    if len(sys.argv) > 4:
        for line in open(sys.argv[4]):
            m = re.match(r"decision (\d+) ", line)
            if m:
                explained.add(int(m.group(1)))
    same = sum(1 for i, b in chosen.items() if live_be.get(i) == b)
    print("capture replayed: %d of %d decisions as the live dataplane took them"
          % (same, len(chosen)))
    keys = sorted(set(live) & set(sim))
    print("rows compared: %d (live only %d, sim only %d)"
          % (len(keys), len(set(live) - set(sim)), len(set(sim) - set(live))))
    for label, sel in (("all decisions", keys),
                       ("decisions --explain lists (%d)" % len(explained),
                        [k for k in keys if k[0] in explained])):
        if not sel:
            continue
        print("\n%s: %d rows" % (label, len(sel)))
        print("%-12s %8s %10s %10s" % ("feature", "differ", "mean |d|", "mean d"))
        for f in range(16):
            d = [live[k][f] - sim[k][f] for k in sel]
            nz = sum(1 for x in d if x)
            print("%2d %-9s %7.1f%% %10.2f %+10.2f" % (f, NAMES[f], 100.0 * nz / len(d),
                                                    sum(abs(x) for x in d) / len(d),
                                                    sum(d) / len(d)))


main()
