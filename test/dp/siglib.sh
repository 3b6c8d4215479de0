# siglib.sh - sourced by the signed-policy tests (test/dp/signed.sh,
# test/ebpf/signed.sh, test/agent/signed.sh): keys and policy files made with the
# operator's own tool (qsteer-policy keygen / sign), plus the bad variants a program
# given a public key must refuse.
# Needs: $QPOL (qsteer-policy), fail() from the test, $T (the test's directory, where
# it runs); the live checks $CTLS.

# flip_byte FILE OFFSET: invert one byte in place (negative: from the end)
flip_byte() {
	python3 - "$1" "$2" <<'PY'
import sys
p, off = sys.argv[1], int(sys.argv[2])
b = bytearray(open(p, "rb").read())
b[off] ^= 0xFF
open(p, "wb").write(bytes(b))
PY
}

# sig_keys: k1 and k2 (trusted, for rotation), k3 (not trusted). Returns 1 when this
# build has no libsodium (keygen refuses), after checking that it says so.
sig_keys() {
	if ! "$QPOL" keygen k1.pub k1.sec 2> keygen.err; then
		grep -q "no libsodium" keygen.err || fail "keygen: $(cat keygen.err)"
		# a syntactically valid key, for the "refused, not ignored" checks
		printf '%064d\n' 0 > k1.pub
		return 1
	fi
	"$QPOL" keygen k2.pub k2.sec
	"$QPOL" keygen k3.pub k3.sec
	printf 'not a key\n' > bad.pub
}

# sig_variants BASE.q8: BASE.k1.q8 BASE.k2.q8 (good), BASE.k3.q8 (wrong key),
# BASE.tamp.q8 (a weight byte flipped after signing: the CRC no longer matches),
# BASE.tsig.q8 (a signature byte flipped); BASE.q8 itself stays unsigned.
sig_variants() {
	b=${1%.q8}
	for k in k1 k2 k3; do
		"$QPOL" sign "$b.q8" $k.sec "$b.$k.q8"
	done
	cp "$b.k1.q8" "$b.tamp.q8"
	flip_byte "$b.tamp.q8" 200
	cp "$b.k1.q8" "$b.tsig.q8"
	flip_byte "$b.tsig.q8" -1
}

# sig_startup_refusals FN: the start-up refusals every daemon given keys shares (an
# unsigned, a tampered, a re-signed, a wrongly signed policy; a missing and a
# malformed key file), each through the test's FN NAME PATTERN ARGS..., which fails
# unless the program refuses ARGS saying PATTERN. Makes sig.ini (CONFIG with
# policy_pubkey = k2 in [service]) and $KEYS (it, plus --pubkey k1). Needs $CFG, $T
# and a.q8 with its variants (sig_variants a.q8).
sig_startup_refusals() {
	sed "s|^\[service\]|[service]\npolicy_pubkey = $T/k2.pub|" "$CFG" > sig.ini
	grep -q "^policy_pubkey = $T/k2.pub" sig.ini || fail "sig.ini"
	KEYS="--config sig.ini --pubkey $T/k1.pub"
	"$1" unsigned "policy refused: a.q8: unsigned, and signed policies are required here (2 public keys configured)" \
		$KEYS --policy a.q8
	"$1" tampered "policy refused: a.tamp.q8: CRC32C .* corrupted, or tampered after signing" \
		$KEYS --policy a.tamp.q8
	"$1" "tampered signature" "policy refused: a.tsig.q8: Ed25519 signature does not verify with any of the 2 configured public keys" \
		$KEYS --policy a.tsig.q8
	"$1" "wrong key" "policy refused: a.k3.q8: Ed25519 signature does not verify with any of the 2 configured public keys" \
		$KEYS --policy a.k3.q8
	"$1" "missing --pubkey file" "pubkey: $T/missing.pub: cannot open: No such file" \
		$KEYS --pubkey "$T/missing.pub" --policy a.k1.q8
	"$1" "malformed --pubkey file" "pubkey: $T/bad.pub: expected 64 hex digits" \
		$KEYS --pubkey "$T/bad.pub" --policy a.k1.q8
}

# sig_refused RUN WHAT PATTERN ARGS...: the program must refuse to start with ARGS,
# saying PATTERN; RUN LOG ARGS... is the test's way of starting it (output in LOG,
# its exit status returned).
sig_refused() {
	run=$1 what=$2 pat=$3
	shift 3
	if "$run" start.log "$@"; then fail "start-up with $what was not refused: $(tail -3 start.log)"; fi
	grep -q -- "$pat" start.log || fail "start-up with $what: want '$pat', got: $(tail -3 start.log)"
	echo "start-up, $what: $(grep -- "$pat" start.log | head -1)"
}

# sig_prepare RUN WHAT PATTERN ARGS...: keys (sig_keys) and the variants of a.q8 and
# b.q8. A build without libsodium has none: there ARGS, which give a public key,
# must be refused saying PATTERN (sig_refused), and the test passes.
sig_prepare() {
	if ! sig_keys; then
		sig_refused "$@"
		echo "PASS (this build has no libsodium: --pubkey refused)"
		exit 0
	fi
	sig_variants a.q8
	sig_variants b.q8
}

# sig_show_is MODE ACTIVE_SUFFIX SECOND_SUFFIX|- VERSION|- [CANARY_PCT]: what a
# running daemon's `policy show` says now. Needs $CTLS (qsteerctl and its socket).
sig_show_is() {
	$CTLS --json policy show > show.json
	python3 - "$@" << 'PY' || fail "policy show: want $*, got $(cat show.json)"
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
if len(sys.argv) > 5:
    assert p["canary_pct"] == int(sys.argv[5]), p
PY
}

# sig_live_refusals: each bad variant of b.q8 (unsigned, tampered, bad signature,
# wrong key) loaded into a daemon running a.k1.q8 with keys k1 and k2, as active,
# shadow and canary, is refused with its reason, and a.k1.q8 keeps running at the
# same version.
sig_live_refusals() {
	$CTLS --json policy show > show.json
	v0=$(python3 -c 'import json; print(json.load(open("show.json"))["policy"]["version"])')
	sig_show_is active a.k1.q8 - "$v0"
	for flag in "" --shadow "--canary 30"; do
		for v in "b.q8|unsigned, and signed policies are required here (2 public keys configured)" \
			"b.tamp.q8|corrupted, or tampered after signing" \
			"b.tsig.q8|does not verify with any of the 2 configured public keys" \
			"b.k3.q8|does not verify with any of the 2 configured public keys"; do
			f=${v%%|*} pat=${v#*|}
			rc=0
			# shellcheck disable=SC2086
			$CTLS policy load "$T/$f" $flag 2> err.txt > out.txt || rc=$?
			[ $rc = 1 ] || fail "load ${flag:-active} of $f: exit $rc, want 1 ($(cat out.txt err.txt))"
			grep -q "$T/$f: .*$pat" err.txt || fail "load ${flag:-active} of $f: $(cat err.txt)"
			sig_show_is active a.k1.q8 - "$v0"
		done
		echo "live ${flag:-active}: unsigned, tampered, bad signature and wrong key refused; a.k1.q8 still runs"
	done
	echo "refused: $(cat err.txt)"
}

# sig_live_loads: then signed files load in every mode (b.k2.q8 as shadow, a
# tampered canary refused over it, b.k1.q8 as canary 30%, each rolled back), as do
# b.k2.q8 and builtin:rr as active, and a.k1.q8 again at the end.
sig_live_loads() {
	$CTLS policy load "$T/b.k2.q8" --shadow > /dev/null || fail "b.k2.q8 refused as shadow"
	sig_show_is shadow a.k1.q8 b.k2.q8 -
	$CTLS policy load "$T/b.tamp.q8" --canary 10 2> err.txt && fail "tampered canary loaded over a shadow"
	sig_show_is shadow a.k1.q8 b.k2.q8 -
	$CTLS policy rollback > /dev/null || fail "rollback of the shadow"
	$CTLS policy load "$T/b.k1.q8" --canary 30 > /dev/null || fail "b.k1.q8 refused as canary"
	sig_show_is canary a.k1.q8 b.k1.q8 - 30
	$CTLS policy rollback > /dev/null || fail "rollback of the canary"
	sig_show_is active a.k1.q8 - -
	$CTLS policy load "$T/b.k2.q8" > /dev/null || fail "b.k2.q8 refused as active"
	sig_show_is active b.k2.q8 - -
	$CTLS policy load builtin:rr > /dev/null || fail "builtin:rr refused with keys configured"
	sig_show_is active builtin:rr - -
	$CTLS policy load "$T/a.k1.q8" > /dev/null || fail "a.k1.q8 refused as active"
	sig_show_is active a.k1.q8 - -
	echo "live: signed with k1 or k2 loads as shadow, canary and active; builtin:rr loads"
}
