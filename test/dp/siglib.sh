# siglib.sh - sourced by the signed-policy tests (test/dp/signed.sh,
# test/ebpf/signed.sh, test/agent/signed.sh): keys and policy files made with the
# operator's own tool (qsteer-policy keygen / sign), plus the bad variants a program
# given a public key must refuse.
# Needs: $QPOL (qsteer-policy), fail() from the test; runs in the test's directory.

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
