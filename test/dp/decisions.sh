#!/bin/sh
# qsteer-pcap decisions (tools/pcap/decisions.c): the feature rows it writes are the
# ones the decision was made on. Each policy decision's candidate rows, scored again
# by qsteer-policy eval (the independent path: a CSV of integers through the loader
# and the scalar kernel), must pick the backend the replay chose; every request of the
# capture has its rows; a builtin decides too (its rows are written all the same).
# usage: decisions.sh QSTEER-PCAP QSTEER-POLICY CONFIG TRACE POLICY.q8
set -eu
PCAP=$1 POL=$2 CFG=$3 TRACE=$4 Q8=$5
PY=/usr/bin/python3
T=$(mktemp -d /tmp/qsteer-decisions.XXXXXX)
trap 'rm -rf "$T"' EXIT
trap 'exit 130' INT TERM
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 400 --seed 5 --out "$T/in.pcap" \
	--manifest "$T/m.json" > /dev/null
"$PCAP" decisions --in "$T/in.pcap" --config "$CFG" --policy "$Q8" --out "$T/d.csv" \
	2> "$T/err.txt" || { cat "$T/err.txt"; exit 1; }
cat "$T/err.txt"
# the candidate rows of each policy decision, one blank line between requests
$PY - "$T/d.csv" "$T/rows.txt" "$T/meta.txt" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
reqs = {}
for r in rows:
    reqs.setdefault(r["request_id"], []).append(r)
out, meta = open(sys.argv[2], "w"), open(sys.argv[3], "w")
n = 0
for rid, rs in reqs.items():
    if rs[0]["how"] != "policy":
        continue
    for r in rs:
        out.write(",".join(r["f%d" % k] for k in range(16)) + "\n")
    out.write("\n")
    meta.write("%s %s %s\n" % (rid, rs[0]["backend"], " ".join(r["candidate"] for r in rs)))
    n += 1
assert n >= 300, "only %d policy decisions" % n
print("requests %d, policy decisions %d" % (len(reqs), n))
PY
"$POL" eval "$Q8" < "$T/rows.txt" > "$T/eval.csv"
$PY - "$T/eval.csv" "$T/meta.txt" "$T/m.json" <<'PY'
import csv, json, sys
choice = {}
for r in csv.DictReader(open(sys.argv[1])):
    choice[int(r["request"])] = int(r["choice"])
meta = [l.split() for l in open(sys.argv[2])]
assert len(choice) == len(meta), (len(choice), len(meta))
bad = [m for i, m in enumerate(meta) if m[2 + choice[i]] != m[1]]
assert not bad, "%d decisions where the rows score another backend, e.g. %s" % (len(bad), bad[:3])
man = json.load(open(sys.argv[3]))
print("every policy decision's rows score the backend it chose (%d); the capture has %s requests"
      % (len(meta), man.get("requests", "?")))
PY
# a builtin: a decision per request, rows included
"$PCAP" decisions --in "$T/in.pcap" --config "$CFG" --policy builtin:lor --out "$T/b.csv" 2> /dev/null
$PY -c '
import csv, sys
r = list(csv.DictReader(open(sys.argv[1])))
hows = {x["how"] for x in r}
assert "builtin" in hows, hows
print("builtin:lor: %d rows, decided by %s" % (len(r), sorted(hows)))' "$T/b.csv"
# refusals say what is wrong
rc=0
"$PCAP" decisions --in "$T/none.pcap" --config "$CFG" --policy "$Q8" 2> "$T/e.txt" || rc=$?
[ $rc = 2 ] && grep -q "none.pcap" "$T/e.txt" || { echo "missing capture: rc $rc $(cat "$T/e.txt")"; exit 1; }
rc=0
"$PCAP" decisions --in "$T/in.pcap" --config "$CFG" --policy builtin:nope 2> "$T/e.txt" || rc=$?
[ $rc = 2 ] && grep -q "unknown builtin" "$T/e.txt" || { echo "bad builtin: rc $rc $(cat "$T/e.txt")"; exit 1; }
echo "qsteer-pcap decisions: ok"
