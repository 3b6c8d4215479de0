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
