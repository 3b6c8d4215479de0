#!/bin/sh
# signed.sh - qsteer-xdp given policy public keys (issue 17 part 2): k1 by --pubkey
# and k2 by the config's policy_pubkey are trusted (rotation), k3 is not.
#   - start-up (--check: the program is loaded, nothing attached): an unsigned, a
#     tampered (one byte flipped after signing), a badly signed and a wrongly signed
#     policy, and a missing or malformed key file, are refused with a message that
#     names the file and the reason; files signed with k1 or k2 pass;
#   - live: the daemon attached (generic mode) to lo in a network namespace made here,
#     `qsteerctl policy load` of each bad file, as active, shadow and canary, is
#     refused with that message and `policy show` still shows the running policy at
#     the same version; signed files load as shadow and canary (and roll back) and
#     as active, builtins as active. Nothing waits on time but the control socket's
#     first answer.
#   - in a build without libsodium: --pubkey is refused, not ignored.
# usage: signed.sh QSTEER_XDP QSTEERCTL MKPOLICY QSTEER_POLICY CONFIG
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../dp/lib.sh"
. "$HERE/../dp/siglib.sh"
XDP=$(abs "$1") CTL=$(abs "$2") MKPOL=$(abs "$3") QPOL=$(abs "$4") CFG=$(abs "$5")
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (BPF, namespaces)"; exit 77; fi
command -v ip > /dev/null 2>&1 || { echo "SKIP: ip not installed"; exit 77; }
NS=qsig$$
T=$(mktemp -d /tmp/qsteer-xdp-signed.XXXXXX)
DPPID=
cleanup() {
	[ -n "$DPPID" ] && kill "$DPPID" 2> /dev/null && wait "$DPPID" 2> /dev/null
	ip netns del $NS 2> /dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
cd "$T"
fail() { echo "FAIL: $*"; [ -f xdp.log ] && tail -20 xdp.log; exit 1; }
CTLS="$CTL --socket $T/xdp.sock"

# check_in LOG ARGS...: qsteer-xdp --check, its output in LOG, its status returned
check_in() {
	log=$1
	shift
	rc=0
	timeout 3600 "$XDP" --check "$@" > "$log" 2>&1 || rc=$?
	return $rc
}
check() { check_in check.log "$@"; }
# refused WHAT PATTERN ARGS...: --check must fail saying PATTERN
refused() { sig_refused check_in "$@"; }

"$MKPOL" 1 a.q8 xsig-a > /dev/null
"$MKPOL" 2 b.q8 xsig-b > /dev/null
# BPF available at all? (a kernel or container without it skips, as the other tests)
if ! check --config "$CFG" --policy a.q8; then
	if grep -qi "operation not permitted\|not supported\|bpf" check.log; then
		echo "SKIP: cannot load BPF here: $(tail -1 check.log)"
		exit 77
	fi
	fail "plain --check: $(cat check.log)"
fi

sig_prepare check_in "--pubkey, no libsodium" "no libsodium" --config "$CFG" --policy a.q8 \
	--pubkey "$T/k1.pub"

# ---- start-up -----------------------------------------------------------------------
sig_startup_refusals refused
for k in k1 k2; do
	check $KEYS --policy a.$k.q8 || fail "a.$k.q8 refused: $(cat check.log)"
	grep -q "policy a.$k.q8 OK" check.log || fail "a.$k.q8: $(cat check.log)"
done
check $KEYS --policy builtin:rr || fail "builtin:rr with keys: $(cat check.log)"
check --config "$CFG" --policy a.q8 || fail "unsigned without a key: $(cat check.log)"
echo "start-up: a.k1.q8 and a.k2.q8 pass, builtin:rr passes, no key: unsigned passes"

# ---- live ---------------------------------------------------------------------------
ip netns add $NS 2> /dev/null || { echo "SKIP: cannot create network namespaces"; exit 77; }
ip -n $NS link set lo up
ip netns exec $NS "$XDP" $KEYS --iface lo --mode generic --policy "$T/a.k1.q8" \
	--control "$T/xdp.sock" > xdp.log 2>&1 &
DPPID=$!
wait_socket "$T/xdp.sock"

sig_live_refusals
sig_live_loads
$CTLS shutdown > /dev/null
wait "$DPPID" || { DPPID=; fail "qsteer-xdp exited with an error"; }
DPPID=
echo PASS
