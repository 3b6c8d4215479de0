#!/bin/sh
# signed.sh - qsteer-agent given policy public keys (issue 17 part 2): its batching
# policy q8:FILE must be signed with a trusted key (k1 by --pubkey, k2 by the config's
# policy_pubkey: rotation; k3 is not trusted). The agent loads that file once, at
# start (it has no live load), for serving and for bench alike:
#   - unsigned, tampered (one byte flipped after signing), badly and wrongly signed
#     files stop it with a message naming the file and the reason;
#   - a missing or malformed key file (option or config) stops it;
#   - files signed with k1 or k2 are served with (it starts, then --duration ends
#     it: nothing is measured) and benched; built-in strategies need no signature;
#   - without a key an unsigned file is accepted as before;
#   - in a build without libsodium: --pubkey is refused, not ignored.
# usage: signed.sh QSTEER_AGENT QSTEER_POLICY BATCH.q8
set -eu
abs() { case $1 in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
AG=$(abs "$1") QPOL=$(abs "$2") BATCH=$(abs "$3")
HERE=$(cd "$(dirname "$0")" && pwd)
T=$(mktemp -d /tmp/qsteer-agent-signed.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
fail() { echo "FAIL: $*"; exit 1; }
. "$HERE/../dp/siglib.sh"

# serve LOG ARGS...: start serving on a loopback port the kernel picks, stop at once
serve() {
	log=$1
	shift
	rc=0
	timeout 60 "$AG" --listen 127.0.0.1:0 --duration 0.1 "$@" > "$log" 2>&1 || rc=$?
	return $rc
}
# refused WHAT PATTERN ARGS...: qsteer-agent must exit non-zero saying PATTERN
refused() { sig_refused serve "$@"; }

cp "$BATCH" batch.q8
if ! sig_keys; then
	refused "--pubkey, no libsodium" "no libsodium" --pubkey "$T/k1.pub" -b q8:batch.q8
	printf '[agent]\npolicy_pubkey = %s\n' "$T/k1.pub" > nosodium.ini
	refused "policy_pubkey, no libsodium" "no libsodium" -c nosodium.ini -b fixed
	echo "PASS (this build has no libsodium: keys refused)"
	exit 0
fi
sig_variants batch.q8
printf '[agent]\npolicy_pubkey = %s\n' "$T/k2.pub" > sig.ini
printf '[agent]\npolicy_pubkey = %s, %s\n' "$T/k2.pub" "$T/bad.pub" > bad.ini

refused unsigned "batch.q8: unsigned, and signed policies are required here (2 public keys configured)" \
	-c sig.ini --pubkey "$T/k1.pub" -b q8:batch.q8
refused tampered "batch.tamp.q8: CRC32C .* corrupted, or tampered after signing" \
	-c sig.ini --pubkey "$T/k1.pub" -b q8:batch.tamp.q8
refused "tampered signature" "batch.tsig.q8: Ed25519 signature does not verify with any of the 2 configured public keys" \
	-c sig.ini --pubkey "$T/k1.pub" -b q8:batch.tsig.q8
refused "wrong key" "batch.k3.q8: Ed25519 signature does not verify with any of the 2 configured public keys" \
	-c sig.ini --pubkey "$T/k1.pub" -b q8:batch.k3.q8
refused "wrong key, one key" "batch.k3.q8: Ed25519 signature does not verify with the given public key" \
	--pubkey "$T/k1.pub" -b q8:batch.k3.q8
refused "missing --pubkey file" "pubkey: $T/missing.pub: cannot open: No such file" \
	--pubkey "$T/missing.pub" -b q8:batch.k1.q8
refused "malformed policy_pubkey file" "policy_pubkey: $T/bad.pub: expected 64 hex digits" \
	-c bad.ini -b q8:batch.k1.q8
if "$AG" bench --pubkey "$T/k1.pub" -b q8:batch.q8 --scenario static --requests 20 \
	> bench.log 2>&1; then
	fail "bench with an unsigned q8: was not refused"
fi
grep -q "batch.q8: unsigned, and signed policies are required here" bench.log || fail "bench: $(cat bench.log)"

for k in k1 k2; do
	serve ok.log -c sig.ini --pubkey "$T/k1.pub" -b q8:batch.$k.q8 || fail "batch.$k.q8: $(cat ok.log)"
	grep -q "q8:default-batch batching" ok.log || fail "batch.$k.q8: $(cat ok.log)"
done
"$AG" bench -c sig.ini --pubkey "$T/k1.pub" -b q8:batch.k2.q8 -b fixed --scenario static \
	--requests 20 > bench.log 2>&1 || fail "bench with a signed q8: $(cat bench.log)"
grep -q "q8:default-batch" bench.log || fail "bench: $(cat bench.log)"
serve ok.log -c sig.ini --pubkey "$T/k1.pub" -b adaptive || fail "adaptive with keys: $(cat ok.log)"
serve ok.log -b q8:batch.q8 || fail "unsigned without a key: $(cat ok.log)"
echo "PASS: signed with k1 or k2 served and benched; builtins and keyless unsigned accepted"
