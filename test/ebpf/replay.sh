#!/bin/sh
# replay.sh - the dataplane's replay pcap through the XDP program (BPF_PROG_TEST_RUN,
# one packet at a time, test clock = pcap timestamp):
#  1. xdp-replay: every packet's verdict and bytes equal to the dataplane core's
#     (burst of one), every counter equal; with the .q8 policy, every builtin
#     policy and every fallback baseline;
#  2. qsteer-pcap check --burst 1 on the frames the program sent (and its counters);
#  3. when qsteer-dp is built and takes --burst: qsteer-dp on net_pcap with bursts
#     of one must write exactly the frames the program sent;
#  4. shadow and canary (b.q8 beside a.q8): xdp-replay requires the program's frames
#     and shadow counters equal to the core's; with qsteer-dp, its canary at 30%
#     (loaded live while the rx gate holds) writes exactly the program's frames, and
#     its shadow report (scored, agreed, per-backend sends, every disagreement pair)
#     equals the program's.
# usage: replay.sh XDP_REPLAY QSTEER_PCAP MKPOLICY CONFIG TRACE QSTEER_DP|none QSTEERCTL
set -eu
. "$(dirname "$0")/../dp/lib.sh"
XR=$(abs "$1") PCAP=$(abs "$2") MKPOL=$(abs "$3") CFG=$(abs "$4") TRACE=$(abs "$5")
DP=$(abs "${6:-none}") CTL=$(abs "${7:-none}")
if [ "$(id -u)" != 0 ]; then echo "SKIP: BPF_PROG_TEST_RUN needs root"; exit 77; fi
enter_tmpdir xdp-replay
CTLS="$CTL --socket $T/dp.sock"
"$MKPOL" 1 a.q8 replay-a
"$MKPOL" 2 b.q8 replay-b
# exactly as test/dp/replay.sh makes it
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 5000 --speedup 200 \
	--malformed 380 --out in.pcap --manifest manifest.json

echo "== policy a.q8"
rc=0
"$XR" --config "$CFG" --in in.pcap --policy a.q8 --out xdp.pcap --stats-out xdp.json || rc=$?
[ $rc = 77 ] && exit 77
[ $rc = 0 ] || { echo "FAIL: xdp vs dataplane core (a.q8)"; exit 1; }
echo "== qsteer-pcap check --burst 1"
"$PCAP" check --burst 1 --in in.pcap --out xdp.pcap --config "$CFG" --policy a.q8 \
	--stats xdp.json --manifest manifest.json

for b in random rr lor lot jsq p2c sed kv; do
	echo "== policy builtin:$b, fallback $b"
	"$XR" --config "$CFG" --in in.pcap --policy "builtin:$b" --fallback "$b" --max-print 5 \
		> "b-$b.log" || { cat "b-$b.log"; echo "FAIL: builtin:$b"; exit 1; }
	tail -1 "b-$b.log"
	echo "== policy a.q8, fallback $b, non_qrp = pass"
	"$XR" --config "$CFG" --in in.pcap --policy a.q8 --fallback "$b" --pass-non-qrp \
		--max-print 5 > "f-$b.log" || { cat "f-$b.log"; echo "FAIL: fallback $b"; exit 1; }
	tail -1 "f-$b.log"
done

echo "== a.q8 + b.q8 as shadow; a.q8 + b.q8 as canary 30%"
"$XR" --config "$CFG" --in in.pcap --policy a.q8 --second b.q8 --mode shadow \
	--out xdp-shadow.pcap --stats-out xdp-shadow.json --shadow-out xdp-shadow-report.json \
	> shadow.log || { cat shadow.log; echo "FAIL: shadow"; exit 1; }
tail -1 shadow.log
"$XR" --config "$CFG" --in in.pcap --policy a.q8 --second b.q8 --mode canary --pct 30 \
	--out xdp-canary.pcap --stats-out xdp-canary.json > canary.log \
	|| { cat canary.log; echo "FAIL: canary"; exit 1; }
tail -1 canary.log
python3 - <<'PY' || { echo "FAIL: shadow/canary counters"; exit 1; }
import json
s, c = json.load(open("xdp-shadow.json")), json.load(open("xdp-canary.json"))
r = json.load(open("xdp-shadow-report.json"))
# a real comparison: both policies steer, and they disagree on some requests
assert s["shadow_scored"] > 0 and 0 < s["shadow_disagree"] < s["shadow_scored"], s
assert r["scored"] == s["shadow_scored"] and r["disagreed"] == s["shadow_disagree"], r
assert sum(e["count"] for e in r["disagreements"]) == r["disagreed"], r
assert s["canary"] == 0 and c["shadow_scored"] == 0, (s, c)
assert 0 < c["canary"] < c["decided_policy"], c
print(f"shadow: {s['shadow_scored']} scored, {s['shadow_disagree']} disagreed; "
      f"canary: {c['canary']} of {c['decided_policy']} policy decisions")
PY

# same_frames A.pcap B.pcap: same frames, same order (record headers hold times)
same_frames() { python3 - "$1" "$2" <<'PY'
import struct, sys
def frames(p):
    b = open(p, 'rb').read(); o = 24; out = []
    while o + 16 <= len(b):
        n = struct.unpack_from('<I', b, o + 8)[0]; out.append(b[o + 16:o + 16 + n]); o += 16 + n
    return out
a, b = frames(sys.argv[1]), frames(sys.argv[2])
sys.exit(0 if a == b else 1)
PY
}

if [ "$DP" != none ] && "$DP" --no-huge -m 64 --no-pci --file-prefix "qsteer-xdp-help-$$" \
		-l 0 -- --help 2>&1 | grep -q -- '--burst'; then
	echo "== qsteer-dp --burst 1 on net_pcap"
	start_dp xdp-replay "net_pcap0,rx_pcap=in.pcap,tx_pcap=dp.pcap" "$T/dp.sock" \
		--config "$CFG" --policy a.q8 --burst 1 --stats-out dp.json
	run_out "$(pcap_count in.pcap)"
	stop_dp
	"$PCAP" check --burst 1 --in in.pcap --out dp.pcap --config "$CFG" --policy a.q8 \
		--stats dp.json --manifest manifest.json
	# same frames, same order (pcap record headers hold times, so compare payloads)
	same_frames xdp.pcap dp.pcap || { echo "FAIL: qsteer-dp --burst 1 and XDP sent different frames"; exit 1; }
	echo "qsteer-dp --burst 1 and XDP: identical frames"

	# run_second MODE ARGS...: qsteer-dp --burst 1, held until b.q8 runs as MODE
	run_second() {
		m=$1
		shift
		start_dp "xdp-$m" "net_pcap0,rx_pcap=in.pcap,tx_pcap=dp-$m.pcap" "$T/dp.sock" \
			--config "$CFG" --policy a.q8 --burst 1 --rx-hold
		$CTLS policy load b.q8 "$@" > /dev/null || fail "qsteer-dp: b.q8 $*"
		run_out "$(pcap_count in.pcap)"
	}
	echo "== qsteer-dp --burst 1: b.q8 as canary 30%, then as shadow"
	run_second canary --canary 30
	stop_dp
	same_frames xdp-canary.pcap dp-canary.pcap \
		|| { echo "FAIL: the canary split: qsteer-dp and XDP sent different frames"; exit 1; }
	echo "canary 30%: qsteer-dp --burst 1 and XDP identical frames"
	run_second shadow --shadow
	$CTLS --json policy shadow --top 0 > dp-shadow.json
	stop_dp
	python3 - <<'PY' || { echo "FAIL: qsteer-dp and XDP shadow reports differ"; exit 1; }
import json
d = json.load(open("dp-shadow.json"))
x = json.load(open("xdp-shadow-report.json"))
# the daemon started with a.q8 alone: since start and since the load are the same
assert d["total"] == x, (d["total"], x)
assert d["window"] == x, (d["window"], x)
print(f"shadow: qsteer-dp --burst 1 and XDP report alike: {x['scored']} scored, "
      f"agreement {x['agreement_ppm'] / 1e4:.2f}%, {len(x['disagreements'])} disagreement pairs")
PY
else
	echo "note: qsteer-dp with --burst not available here; compared with the core and qsteer-pcap check"
fi
echo "ebpf-replay: OK"
