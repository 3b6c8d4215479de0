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

# check WHAT ARGS...: qsteer-xdp --check; its output in check.log, its status returned
check() {
	rc=0
	timeout 3600 "$XDP" --check "$@" > check.log 2>&1 || rc=$?
	return $rc
}
# refused WHAT PATTERN ARGS...
refused() {
	what=$1 pat=$2
	shift 2
	if check "$@"; then fail "--check with $what was not refused: $(cat check.log)"; fi
	grep -q -- "$pat" check.log || fail "--check with $what: want '$pat', got: $(tail -3 check.log)"
	echo "start-up, $what: $(grep -- "$pat" check.log | head -1)"
}

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

if ! sig_keys; then
	refused "--pubkey, no libsodium" "no libsodium" --config "$CFG" --policy a.q8 \
		--pubkey "$T/k1.pub"
	echo "PASS (this build has no libsodium: --pubkey refused)"
	exit 0
fi
sig_variants a.q8
sig_variants b.q8

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

# show_is ACTIVE_SUFFIX VERSION|-
show_is() {
	$CTLS --json policy show > show.json
	python3 - "$@" <<'PY' || fail "policy show: want $*, got $(cat show.json)"
import json, sys
act, ver = sys.argv[1:3]
p = json.load(open("show.json"))["policy"]
assert p["mode"] == "active", p
assert p["active"]["source"].endswith(act), p
if ver != "-":
    assert p["version"] == int(ver), p
PY
}
$CTLS --json policy show > show.json
V0=$(python3 -c 'import json; print(json.load(open("show.json"))["policy"]["version"])')
show_is a.k1.q8 "$V0"
for v in "b.q8|unsigned, and signed policies are required here (2 public keys configured)" \
	"b.tamp.q8|corrupted, or tampered after signing" \
	"b.tsig.q8|does not verify with any of the 2 configured public keys" \
	"b.k3.q8|does not verify with any of the 2 configured public keys"; do
	f=${v%%|*} pat=${v#*|}
	for flag in --shadow "--canary 30" ""; do
		rc=0
		# shellcheck disable=SC2086
		$CTLS policy load "$T/$f" $flag 2> err.txt > out.txt || rc=$?
		[ $rc = 1 ] || fail "load $flag of $f: exit $rc, want 1 ($(cat out.txt err.txt))"
		# active, shadow and canary alike: the signature's reason
		grep -q "$T/$f: .*$pat" err.txt || fail "load $flag of $f: $(cat err.txt)"
		show_is a.k1.q8 "$V0"
	done
done
echo "live: unsigned, tampered, bad signature and wrong key refused; a.k1.q8 still runs"
echo "refused: $(cat err.txt)"
# signed second policies run, and a rollback drops them
# mode_is MODE SECOND_SUFFIX|- [PCT]
mode_is() {
	$CTLS --json policy show > show.json
	python3 - "$@" <<'PY' || fail "policy show: want $*, got $(cat show.json)"
import json, sys
mode, sec = sys.argv[1:3]
p = json.load(open("show.json"))["policy"]
assert p["mode"] == mode, p
assert p["active"]["source"].endswith("a.k1.q8"), p
if sec != "-":
    assert p[mode]["source"].endswith(sec), p
if mode == "canary":
    assert p["canary_pct"] == int(sys.argv[3]), p
PY
}
$CTLS policy load "$T/b.k2.q8" --shadow > /dev/null || fail "b.k2.q8 refused as shadow"
mode_is shadow b.k2.q8
$CTLS policy load "$T/b.q8" --canary 10 2> err.txt && fail "unsigned canary loaded over a shadow"
mode_is shadow b.k2.q8
$CTLS policy load "$T/b.k2.q8" --canary 30 > /dev/null || fail "b.k2.q8 refused as canary"
mode_is canary b.k2.q8 30
$CTLS policy rollback > /dev/null || fail "rollback of the canary"
mode_is active -
echo "live: b.k2.q8 as shadow, an unsigned canary refused over it, b.k2.q8 as canary 30%, rolled back"
$CTLS policy load "$T/b.k2.q8" > /dev/null || fail "b.k2.q8 refused live"
show_is b.k2.q8 -
$CTLS policy load builtin:rr > /dev/null || fail "builtin:rr refused live"
show_is builtin:rr -
$CTLS policy load "$T/a.k1.q8" > /dev/null || fail "a.k1.q8 refused live"
show_is a.k1.q8 -
echo "live: signed with k2, then builtin:rr, then signed with k1 loaded"
$CTLS shutdown > /dev/null
wait "$DPPID" || { DPPID=; fail "qsteer-xdp exited with an error"; }
DPPID=
echo PASS
