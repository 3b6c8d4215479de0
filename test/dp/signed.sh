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
	# shellcheck disable=SC2046
	timeout 3600 "$DP" $(dp_eal "sig-$N") --vdev "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" \
		-- "$@" > "$log" 2>&1 || rc=$?
	return $rc
}

# refused_start WHAT PATTERN ARGS...: qsteer-dp must exit non-zero saying PATTERN
refused_start() { sig_refused run_dp "$@"; }

"$MKPOL" 1 a.q8 sig-a > /dev/null
"$MKPOL" 2 b.q8 sig-b > /dev/null
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 300 --speedup 200 --seed 5 \
	--out in.pcap > /dev/null
NPKT=$(pcap_count in.pcap)

sig_prepare run_dp "--pubkey, no libsodium" "no libsodium" --config "$CFG" --policy a.q8 \
	--pubkey "$T/k1.pub"
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
# shellcheck disable=SC2086
start_dp sig-live "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" "$SOCK" $KEYS --policy a.k1.q8 \
	--rx-hold
grep -q "policies must be signed with one of 2 public keys" dp.log || fail "no key count in the log"

sig_live_refusals
# traffic flows with keys configured (the rest is let through at the end)
$CTLS rx allow 2 > /dev/null
wait_bursts 2
sig_live_loads
run_out "$NPKT"
stop_dp
echo "PASS: $NPKT packets through; every unsigned, tampered or wrongly signed load refused"
