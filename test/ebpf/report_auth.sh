#!/bin/sh
# report_auth.sh - authenticated reports in pcap replay (issue 17, part 3). The
# replay configuration with report keys for three backends (two inline, one from a
# key file), and a pcap whose honest reports are signed as those agents sign them,
# with untagged, wrongly keyed and replayed reports for a keyed backend among the
# malformed frames:
#  1. xdp-replay: the XDP program's verdicts, bytes and counters equal the
#     dataplane core's, packet by packet; qsteer-pcap check: each forgery is
#     dropped by its reason (report-auth, report-replay) as the manifest says;
#  2. qsteer-dp on net_pcap (when built): the daemon reads the keys from its
#     config, and its counters equal the manifest's drops;
#  3. a key file others may read, and a bad key, stop qsteer-dp at start with an
#     error that names the file or the section, never the key.
# usage: report_auth.sh QSTEER_PCAP MKPOLICY CONFIG TRACE XDP_REPLAY QSTEER_DP|none QSTEERCTL
set -eu
. "$(dirname "$0")/../dp/lib.sh"
PCAP=$(abs "$1") MKPOL=$(abs "$2") CFG0=$(abs "$3") TRACE=$(abs "$4")
XR=$(abs "$5") DP=$(abs "${6:-none}") CTL=$(abs "${7:-none}")
enter_tmpdir report-auth
CTLS="$CTL --socket $T/dp.sock"

printf '5f0e1d2c3b4a59687786950a1b2c3d4e\n' > gpu5.key
chmod 600 gpu5.key
# keys for gpu0 (id 10, the first keyed: its forgeries), gpu3 and gpu5
awk -v kf="$T/gpu5.key" '
	{ print }
	/^\[backend gpu0\]/ { print "report_key = 00112233445566778899aabbccddeeff" }
	/^\[backend gpu3\]/ { print "report_key = 0123456789ABCDEF0123456789abcdef" }
	/^\[backend gpu5\]/ { print "report_key_file = " kf }' "$CFG0" > keyed.ini
grep -c report_key keyed.ini | grep -qx 3 || fail "keyed.ini has not three keys"
CFG=$T/keyed.ini

"$MKPOL" 1 a.q8 replay-a
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 3000 --speedup 200 \
	--malformed 230 --out in.pcap --manifest manifest.json
python3 - <<'PY' || fail "the manifest lacks the forgeries"
import json
m = json.load(open("manifest.json"))["malformed"]
# 230 frames over 23 kinds: 10 untagged or wrongly keyed (each), 10 replays
assert m.get("report-auth") == 20 and m.get("report-replay") == 10, m
PY

if [ "$(id -u)" != 0 ]; then echo "SKIP: BPF_PROG_TEST_RUN and DPDK need root"; exit 77; fi
echo "== XDP program vs the dataplane core, then qsteer-pcap check on its frames"
rc=0
"$XR" --config "$CFG" --in in.pcap --policy a.q8 --out xdp.pcap --stats-out xdp.json \
	> xdp.log 2>&1 || rc=$?
[ $rc = 77 ] && { echo "SKIP: no BPF here"; exit 77; }
[ $rc = 0 ] || { cat xdp.log; fail "xdp vs dataplane core"; }
tail -1 xdp.log
"$PCAP" check --burst 1 --in in.pcap --out xdp.pcap --config "$CFG" --policy a.q8 \
	--stats xdp.json --manifest manifest.json > check.log || { cat check.log; fail "check"; }
tail -1 check.log
python3 - <<'PY' || fail "XDP counters"
import json
d = json.load(open("xdp.json"))["drops"]
assert d["report-auth"] == 20 and d["report-replay"] == 10, d
print(f"XDP: report-auth {d['report-auth']}, report-replay {d['report-replay']}")
PY

echo "== the default stale mask (2 report intervals of 5 ms): XDP vs the core"
# agents report every 5 ms (gen's --report-interval-ms), backend 1 falls silent for
# 15% of the file; without report_max_age_ms the mask is report_interval_ms x
# report_stale_intervals = 10 ms, and the program must mask exactly when the core does
sed '/^report_max_age_ms/d' keyed.ini > default-age.ini
"$PCAP" gen --config default-age.ini --trace "$TRACE" --limit 3000 --speedup 200 \
	--report-interval-ms 5 --malformed 230 --out age.pcap --manifest age.json > /dev/null
"$XR" --config default-age.ini --in age.pcap --policy a.q8 --out xdp-age.pcap \
	--stats-out xdp-age.json > xdp-age.log 2>&1 || { cat xdp-age.log; fail "xdp vs core, default mask"; }
tail -1 xdp-age.log
# the same file with ages that never run out: backend 1 keeps getting requests
# through its silence, which the default mask must stop
sed 's/^report_max_age_ms.*/report_max_age_ms = 600000/' keyed.ini > long-age.ini
"$XR" --config long-age.ini --in age.pcap --policy a.q8 --stats-out xdp-long.json \
	> xdp-long.log 2>&1 || { cat xdp-long.log; fail "xdp vs core, long ages"; }
python3 - <<'PY' || fail "the silent backend was not masked by default"
import json
d = json.load(open("xdp-age.json"))["to_backend"]["gpu1"]
l = json.load(open("xdp-long.json"))["to_backend"]["gpu1"]
assert d < l, (d, l)
print(f"gpu1, silent for 15% of the file: {d} requests with the default mask, {l} never masked")
PY

if [ "$DP" != none ]; then
	echo "== qsteer-dp on net_pcap with the keyed config"
	start_dp rauth "net_pcap0,rx_pcap=in.pcap,tx_pcap=dp.pcap" "$T/dp.sock" \
		--config "$CFG" --policy a.q8 --stats-out dp.json
	run_out "$(pcap_count in.pcap)"
	stop_dp
	"$PCAP" check --in in.pcap --out dp.pcap --config "$CFG" --policy a.q8 \
		--stats dp.json --manifest manifest.json > dp-check.log ||
		{ cat dp-check.log; fail "qsteer-dp output"; }
	tail -1 dp-check.log

	echo "== refusals at start"
	chmod 644 gpu5.key
	if "$DP" --no-huge -m 64 --no-pci --file-prefix "qsteer-rauth-bad-$$" -l 0 \
		--vdev "net_null0" -- --config "$CFG" --policy a.q8 > bad1.log 2>&1; then
		fail "qsteer-dp started with a key file others can read"
	fi
	grep -q "gpu5.key.*chmod 600" bad1.log || { cat bad1.log; fail "no reason for the key file"; }
	sed 's/^report_key = 0011.*/report_key = 0011223344556677/' keyed.ini > short.ini
	chmod 600 gpu5.key
	if "$DP" --no-huge -m 64 --no-pci --file-prefix "qsteer-rauth-bad-$$" -l 0 \
		--vdev "net_null0" -- --config short.ini --policy a.q8 > bad2.log 2>&1; then
		fail "qsteer-dp started with a short key"
	fi
	grep -q "gpu0.*report_key: not a key" bad2.log || { cat bad2.log; fail "no reason for the bad key"; }
	if grep -q 0011223344556677 bad2.log; then fail "the error echoes the key"; fi
	echo "refused: a key file others can read, a short key"
fi
echo "report-auth: OK"
