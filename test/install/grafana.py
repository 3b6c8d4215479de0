#!/usr/bin/env python3
"""grafana.py - dist/grafana/qsteer.json is a Grafana dashboard over metrics the
dataplane exports (suite 'install').

usage: grafana.py DASHBOARD.json STATS_JSON.c

The dashboard must parse as JSON, have panels with Prometheus queries, and name
only metrics that exist: qsteer_up, and qsteer_<counter>_total for a counter that
dp/stats_json.c puts in the "stats" answer (the Prometheus text is rendered from
it, docs/control.md), the labelled drops{reason} and to_backend{backend}.
"""
import json
import re
import sys


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    with open(sys.argv[1], encoding="utf-8") as f:
        dash = json.load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        src = f.read()
    counters = set(re.findall(r"\bPUT\((\w+)\)", src))
    counters |= set(re.findall(r'json_object_set_new\(o, "(\w+)"', src))
    if "rx" not in counters or "drops" not in counters:
        raise SystemExit("FAIL: found no counters in %s" % sys.argv[2])
    known = {"qsteer_up"} | {"qsteer_%s_total" % c for c in counters}
    labels = {"qsteer_drops_total": "reason", "qsteer_to_backend_total": "backend"}
    bad = 0
    exprs = []
    for p in dash.get("panels", []):
        for t in p.get("targets", []):
            exprs.append((p.get("title"), t.get("expr", "")))
        if not p.get("targets"):
            print("FAIL: panel %r has no query" % p.get("title"))
            bad += 1
    if not exprs or not dash.get("title") or not dash.get("uid"):
        print("FAIL: no panels, title or uid")
        bad += 1
    used = set()
    for title, e in exprs:
        names = set(re.findall(r"\bqsteer_\w+", e))
        if not names:
            print("FAIL: panel %r: %r names no qsteer metric" % (title, e))
            bad += 1
        for n in names - known:
            print("FAIL: panel %r: %s is not exported (known: %s)" % (title, n, sorted(known)))
            bad += 1
        for m, lab in labels.items():
            if m in e and re.search(r"by \((\w+)\)", e) and lab not in e:
                print("FAIL: panel %r groups %s by a label it lacks" % (title, m))
                bad += 1
        used |= names
    print("%d panels, %d queries, %d of %d exported metrics used" %
          (len(dash["panels"]), len(exprs), len(used & known), len(known)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
