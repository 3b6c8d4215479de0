#!/bin/sh
# signed.sh - qsteer-dp given policy public keys (issue 17 part 2): two trusted keys
# (--pubkey k1 and the config's policy_pubkey = k2: rotation), one untrusted (k3).
#   - start-up: an unsigned, a tampered (one byte flipped after signing), a wrongly
#     signed policy, a missing and a malformed key file each stop qsteer-dp with a
#     message naming the file and the reason;
#   - live: `qsteerctl policy load` of each bad variant, as active, shadow and canary,
#     is refused with that message and `policy show` still shows the running policy,
#     version unchanged; files signed with either trusted key load in every mode,
#     builtins (compiled in, not files) load as active;
#   - traffic held by the rx gate (lib.sh) until the end, then all of it let through
#     under the last policy: nothing here waits on time, only on counters.
#   - in a build without libsodium: --pubkey is refused, not ignored.
# usage: signed.sh QSTEER_DP|none QSTEER_PCAP QSTEERCTL MKPOLICY QSTEER_POLICY CONFIG TRACE
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/siglib.sh"
DP=$(abs "$1") PCAP=$(abs "$2") CTL=$(abs "$3") MKPOL=$(abs "$4") QPOL=$(abs "$5")
CFG=$(abs "$6") TRACE=$(abs "$7")
need_dp "$DP"
enter_tmpdir signed
SOCK="$T/dp.sock"
CTLS="$CTL --socket $SOCK"
N=0

# run_dp LOG ARGS...: the dataplane in the foreground (start-up refusals)
run_dp() {
	log=$1
	shift
	N=$((N + 1))
	rc=0
	timeout 3600 "$DP" --no-huge -m 256 --no-pci --file-prefix "qsteer-sig-$N-$$" -l 0,1 \
		--vdev "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" -- "$@" > "$log" 2>&1 || rc=$?
	return $rc
}

# refused_start WHAT PATTERN ARGS...: qsteer-dp must exit non-zero saying PATTERN
refused_start() {
	what=$1 pat=$2
	shift 2
	if run_dp start.log "$@"; then fail "start-up with $what was not refused"; fi
	grep -q -- "$pat" start.log || fail "start-up with $what: want '$pat', got: $(tail -3 start.log)"
	echo "start-up, $what: $(grep -- "$pat" start.log | head -1)"
}

"$MKPOL" 1 a.q8 sig-a > /dev/null
"$MKPOL" 2 b.q8 sig-b > /dev/null
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 300 --speedup 200 --seed 5 \
	--out in.pcap > /dev/null
NPKT=$(pcap_count in.pcap)

if ! sig_keys; then
	refused_start "--pubkey, no libsodium" "no libsodium" --config "$CFG" --policy a.q8 \
		--pubkey "$T/k1.pub"
	echo "PASS (this build has no libsodium: --pubkey refused)"
	exit 0
fi
sig_variants a.q8
sig_variants b.q8
sed "s|^\[service\]|[service]\npolicy_pubkey = $T/k2.pub, $T/nokey.pub|" "$CFG" > nokey.ini

# ---- start-up ---------------------------------------------------------------------
# k2 through the config file (the service section), k1 on the command line
sig_startup_refusals refused_start
refused_start "one key, wrong" "policy refused: a.k3.q8: Ed25519 signature does not verify with the given public key" \
	--config "$CFG" --pubkey "$T/k1.pub" --policy a.k3.q8
refused_start "secret key as --pubkey" "pubkey: $T/k1.sec: expected 64 hex digits (a public key), found 128" \
	$KEYS --pubkey "$T/k1.sec" --policy a.k1.q8
refused_start "missing policy_pubkey file" "nokey.ini:[0-9]*: policy_pubkey: $T/nokey.pub: cannot open" \
	--config nokey.ini --policy a.k1.q8
# without a key, nothing changes: the unsigned file starts (and is let go at once)
run_dp start.log --config "$CFG" --policy a.q8 --bench 0.01 || fail "unsigned without a key: $(tail -3 start.log)"

# ---- live loads -------------------------------------------------------------------
rm -f "$SOCK"
timeout 3600 "$DP" --no-huge -m 256 --no-pci --file-prefix "qsteer-sig-live-$$" -l 0,1 \
	--vdev "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" -- \
	$KEYS --policy a.k1.q8 --control "$SOCK" --rx-hold > dp.log 2>&1 &
DPPID=$!
wait_socket "$SOCK"
grep -q "policies must be signed with one of 2 public keys" dp.log || fail "no key count in the log"

# show_is MODE ACTIVE_SUFFIX SECOND_SUFFIX|- VERSION|-: what policy show says now
show_is() {
	$CTLS --json policy show > show.json
	python3 - "$@" <<'PY' || fail "policy show: want $*, got $(cat show.json)"
import json, sys
mode, act, sec, ver = sys.argv[1:5]
p = json.load(open("show.json"))["policy"]
assert p["mode"] == mode, p
assert p["active"]["source"].endswith(act), p
if sec == "-":
    assert p.get("shadow") is None and p.get("canary") is None, p
else:
    assert p[mode]["source"].endswith(sec), p
if ver != "-":
    assert p["version"] == int(ver), p
PY
}

$CTLS --json policy show > show.json
V0=$(python3 -c 'import json; print(json.load(open("show.json"))["policy"]["version"])')
show_is active a.k1.q8 - "$V0"
for mode in active shadow canary; do
	case $mode in
	active) flag= ;;
	shadow) flag=--shadow ;;
	canary) flag="--canary 30" ;;
	esac
	for v in "b.q8|unsigned, and signed policies are required here (2 public keys configured)" \
		"b.tamp.q8|corrupted, or tampered after signing" \
		"b.tsig.q8|does not verify with any of the 2 configured public keys" \
		"b.k3.q8|does not verify with any of the 2 configured public keys"; do
		f=${v%%|*} pat=${v#*|}
		rc=0
		# shellcheck disable=SC2086
		$CTLS policy load "$T/$f" $flag 2> err.txt > out.txt || rc=$?
		[ $rc = 1 ] || fail "$mode load of $f: exit $rc, want 1 ($(cat out.txt err.txt))"
		grep -q "$T/$f: .*$pat" err.txt || fail "$mode load of $f: $(cat err.txt)"
		show_is active a.k1.q8 - "$V0"
	done
	echo "live $mode: unsigned, tampered, bad signature and wrong key refused; a.k1.q8 still runs"
done
echo "refused: $(cat err.txt)"

# signed with either trusted key: accepted in every mode
$CTLS policy load "$T/b.k2.q8" --shadow > /dev/null || fail "shadow b.k2"
show_is shadow a.k1.q8 b.k2.q8 -
$CTLS policy load "$T/b.tamp.q8" --canary 10 2> err.txt && fail "tampered canary over a shadow"
show_is shadow a.k1.q8 b.k2.q8 -
$CTLS policy rollback > /dev/null
$CTLS policy load "$T/b.k1.q8" --canary 30 > /dev/null || fail "canary b.k1"
show_is canary a.k1.q8 b.k1.q8 -
$CTLS policy rollback > /dev/null
$CTLS rx allow 2 > /dev/null
wait_bursts 2
$CTLS policy load "$T/b.k2.q8" > /dev/null || fail "active b.k2"
show_is active b.k2.q8 - -
$CTLS policy load builtin:rr > /dev/null || fail "builtin:rr with keys configured"
show_is active builtin:rr - -
$CTLS policy load "$T/a.k1.q8" > /dev/null || fail "active a.k1"
show_is active a.k1.q8 - -
echo "live: signed with k1 or k2 loads as shadow, canary and active; builtin:rr loads"
run_out "$NPKT"
stop_dp
echo "PASS: $NPKT packets through; every unsigned, tampered or wrongly signed load refused"
