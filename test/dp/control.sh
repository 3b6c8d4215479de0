#!/bin/sh
# control.sh - qsteerctl against a running qsteer-dp, with traffic:
#   - "not running" (exit 3) before the daemon starts, "permission denied" (exit 4)
#     for an unprivileged user against the 0600 root socket;
#   - --json status / backends / stats parsed;
#   - Prometheus /metrics scraped over loopback (a tiny HTTP client);
#   - traffic metered in bursts through the rx gate (lib.sh): every action happens
#     between known bursts, whatever the machine's load;
#   - run 1: backend drain then undrain while traffic flows; qsteer-pcap check
#     --drained proves one drain window, every frame explained, nothing sent to the
#     drained backend inside it, all counters equal;
#   - run 2: a canary at 30% then rollback; check --canary 30 recomputes the split
#     from the request ids, frame by frame.
# usage: control.sh QSTEER_DP|none QSTEER_PCAP QSTEERCTL MKPOLICY CONFIG TRACE
set -eu
. "$(dirname "$0")/lib.sh"
dp_script_start ctl "$@"
chmod 755 "$T" # the socket's own 0600 mode, not the directory, must keep others out
"$MKPOL" 1 a.q8 ctl-a
"$MKPOL" 2 b.q8 ctl-b
SOCK="$T/dp.sock"
CTLS="$CTL --socket $SOCK"

# no daemon yet
rc=0
$CTLS status 2> err.txt || rc=$?
[ $rc = 3 ] || fail "qsteerctl without a daemon exited $rc, want 3"
grep -q "is not running: nothing listens on $SOCK" err.txt || fail "message: $(cat err.txt)"
echo "not running: $(cat err.txt)"

"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 2000 --speedup 200 --seed 11 \
	--malformed 40 --out in.pcap

NPKT=$(pcap_count in.pcap)
start_held() { # $1: file prefix tag. Held: the test meters traffic between its actions.
	rm -f "$SOCK" out.pcap stats.json
	start_dp "ctl-$1" "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" "$SOCK" \
		--config "$CFG" --policy a.q8 --prometheus 127.0.0.1:0 --rx-hold \
		--stats-out stats.json
}

# ---- run 1: drain / undrain, --json, permission, Prometheus ----------------------
start_held drain
[ "$(stat -c %a "$SOCK")" = 600 ] || fail "socket mode $(stat -c %a "$SOCK")"
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" --socket "$SOCK" status \
	2> err.txt || rc=$?
[ $rc = 4 ] || fail "unprivileged qsteerctl exited $rc, want 4 ($(cat err.txt))"
grep -q "permission denied on $SOCK: the socket is mode 0600" err.txt || fail "message: $(cat err.txt)"
echo "unprivileged: $(cat err.txt)"

# a second daemon on the same control path refuses and leaves the first one's socket
rc=0
# shellcheck disable=SC2046
timeout 3600 "$DP" $(dp_eal ctl-second) --vdev "net_pcap0,rx_pcap=in.pcap,tx_pcap=second.pcap" \
	-- --config "$CFG" --policy a.q8 --control "$SOCK" --rx-hold > second.log 2>&1 || rc=$?
[ $rc != 0 ] || fail "a second qsteer-dp started on $SOCK"
grep -q "another daemon is running on this control socket" second.log ||
	fail "second daemon: $(tail -3 second.log)"
$CTLS status > /dev/null || fail "the first daemon lost its socket"
echo "second daemon: $(grep -o 'another daemon.*' second.log | head -1)"

$CTLS --json status > status.json
$CTLS --json backends > backends.json
python3 - <<'PY' || fail "--json output"
import json
s = json.load(open("status.json"))
assert s["ok"] is True and s["daemon"] == "qsteer-dp", s
assert s["workers"] == 1 and s["burst"] == 32 and s["clock"] == "packet", s
assert s["backends"] == 8 and s["policy"]["mode"] == "active", s
assert s["policy"]["active"]["source"].endswith("a.q8"), s
b = json.load(open("backends.json"))["backends"]
assert [x["name"] for x in b] == [f"gpu{i}" for i in range(8)], b
assert all(x["drained"] is False for x in b), b
print("json: status and backends parsed")
PY
# refusals through qsteerctl: exit 1 with the daemon's reason
rc=0
$CTLS backend drain 99 2> err.txt || rc=$?
[ $rc = 1 ] && grep -q "no backend with id 99" err.txt || fail "drain 99: rc $rc $(cat err.txt)"

$CTLS rx allow 20 > /dev/null
wait_bursts 20
$CTLS backend drain 13 | grep -q "backend gpu3 (id 13) drained" || fail "drain"
$CTLS --json backends | python3 -c '
import json, sys
b = {x["id"]: x for x in json.load(sys.stdin)["backends"]}
sys.exit(0 if b[13]["drained"] and not b[12]["drained"] else 1)' || fail "drained flag"
PORT=$(sed -n 's/.*prometheus \/metrics on port \([0-9]*\).*/\1/p' dp.log)
[ -n "$PORT" ] || fail "no prometheus port in the log"
python3 "$(dirname "$0")/prom_fetch.py" "$PORT" metrics.json || fail "prometheus scrape"
python3 - <<'PY' || fail "prometheus metrics"
import json
j = json.load(open("metrics.json"))
body, m = j["body"], j["m"]
assert m["qsteer_up"] == 1
assert m["qsteer_rx_total"] > 0 and m["qsteer_requests_total"] > 0, m
assert m["qsteer_rx_total"] >= m["qsteer_tx_total"]
assert 'qsteer_to_backend_total{backend="gpu0"}' in m
assert 'qsteer_drops_total{reason="ip-csum"}' in m
assert "# TYPE qsteer_rx_total counter" in body
# per-backend gauges: the operator-drained gpu3 is masked, a reporting one is not
assert m['qsteer_backend_masked{backend="gpu3"}'] == 1, m
assert m['qsteer_backend_masked{backend="gpu0"}'] == 0, m
assert 'qsteer_backend_kv_total_blocks{backend="gpu0"}' in m
assert "# TYPE qsteer_backend_report_age_seconds gauge" in body
print(f"prometheus: {len(m)} samples, rx {m['qsteer_rx_total']:.0f}, tx {m['qsteer_tx_total']:.0f}")
PY
$CTLS rx allow 20 > /dev/null
wait_bursts 40
$CTLS backend undrain 13 | grep -q "undrained" || fail "undrain"
run_out "$NPKT"
stop_dp
"$PCAP" check --in in.pcap --out out.pcap --config "$CFG" --policy a.q8 --drained 13 \
	--windows 1 --stats stats.json > check.txt || { cat check.txt; fail "check --drained"; }
cat check.txt
python3 - <<'PY' || fail "drain window too short"
import re
t = open("check.txt").read()
a, b, both, mix = map(int, re.search(r"bursts: (\d+) like .* only, (\d+) like drained only, (\d+) like both, (\d+) like neither", t).groups())
assert re.search(r": 0 new requests to a drained backend \(of [1-9]", t), t
assert b >= 10 and a >= 10 and mix == 0, (a, b, both, mix)
PY

# ---- run 2: canary 30% then rollback --------------------------------------------
start_held canary
$CTLS rx allow 20 > /dev/null
wait_bursts 20
$CTLS policy load b.q8 --canary 30 > /dev/null
$CTLS --json policy show | python3 -c '
import json, sys
p = json.load(sys.stdin)["policy"]
sys.exit(0 if p["mode"] == "canary" and p["canary_pct"] == 30 and p["canary"]["source"].endswith("/b.q8") else 1)' \
	|| fail "canary not shown"
rc=0
$CTLS policy load b.q8 --canary 130 2> err.txt || rc=$?
[ $rc = 1 ] && grep -q "integer 0..100" err.txt || fail "canary 130: rc $rc $(cat err.txt)"
$CTLS rx allow 40 > /dev/null
wait_bursts 60
$CTLS policy rollback | grep -q "dropped" || fail "rollback"
run_out "$NPKT"
stop_dp
"$PCAP" check --in in.pcap --out out.pcap --config "$CFG" --policy a.q8 --alt-policy b.q8 \
	--canary 30 --windows 1 --stats stats.json > check.txt || { cat check.txt; fail "check --canary"; }
cat check.txt
python3 - <<'PY' || fail "canary split"
import json, re
t = open("check.txt").read()
picked, reqs = map(int, re.search(r"canary split: (\d+) of (\d+) requests", t).groups())
c = json.load(open("stats.json"))["counters"]
assert reqs >= 100 and 0.15 < picked / reqs < 0.45, (picked, reqs)
assert c["canary"] > 0
print(f"canary: {picked}/{reqs} picked by id, dataplane counted {c['canary']}")
PY
