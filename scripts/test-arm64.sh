#!/usr/bin/env bash
# The aarch64 build, cross-compiled with Debian 12's toolchain and tested under
# qemu-user (docs/arm.md): installs what it needs (idempotent), configures
# build-arm64/ with cross/aarch64-linux-gnu.ini and no DPDK / BPF / CUDA / MPI, builds,
# and runs the suites that need neither DPDK nor a kernel: policy (the NEON SDOT kernel
# against scalar, golden vectors, run-time selection on a core without dotprod), rc,
# sim, sim+dp and dp (the DPDK-independent core; its qsteer-dp tests skip).
#
#   scripts/test-arm64.sh [BUILD_DIR]      (default build-arm64)
#
# Exit status: 0 all passed; 1 tests ran and some failed (BUILD_DIR/meson-logs/
# testlog.json says which); 2 it broke before the tests (packages, configure, build),
# so scripts/test.sh can count each case once.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
dir=${1:-build-arm64}

die() {
	echo "test-arm64.sh: $*" >&2
	exit 2
}

# Native: the cross compiler, its libc, qemu-user. arm64 (Debian multiarch): the -dev
# packages of what the built parts link (inih, jansson, libpcap for the tools,
# libsodium for signed policies, cmocka for the tests); the compiler, meson and
# python3 run natively. Debian's arm64 DPDK is not co-installable with the amd64 one
# the native build uses (apt would remove it), so the cross build has no qsteer-dp.
native=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross binutils-aarch64-linux-gnu qemu-user
	meson ninja-build)
foreign=(libinih-dev:arm64 libjansson-dev:arm64 libpcap-dev:arm64 libsodium-dev:arm64
	libcmocka-dev:arm64)
missing=()
for p in "${native[@]}" "${foreign[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	[ "$(id -u)" -eq 0 ] || die "missing packages: ${missing[*]} (run as root to install them)"
	echo "test-arm64.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! dpkg --print-foreign-architectures | grep -qx arm64; then
		dpkg --add-architecture arm64 || die "dpkg --add-architecture arm64 failed"
	fi
	apt-get update -qq || die "apt-get update failed"
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi
command -v qemu-aarch64 >/dev/null || die "qemu-aarch64 not found after installing qemu-user"

opts=(-Dbuildtype=release -Ddpdk=disabled -Dbpf=disabled -Dcuda=disabled -Dmpi=disabled
	-Dsimd=enabled -Dtests=enabled -Dsignatures=enabled)
if [ -f "$dir/build.ninja" ]; then
	meson configure "$dir" "${opts[@]}" >/dev/null || die "configuring $dir failed"
else
	meson setup "$dir" --cross-file cross/aarch64-linux-gnu.ini "${opts[@]}" >/dev/null ||
		die "configuring $dir failed"
fi
ninja -C "$dir" >/dev/null || { ninja -C "$dir" | tail -40; die "building $dir failed"; }

# Under emulation the u32 sweep of policy-features-bitexact takes ~6 min instead of
# ~1: QUICK skips it, as the sanitizer build does; the native build sweeps the same
# source. The trainer suites are not run here (see docs/arm.md).
export QSTEER_FEAT_QUICK=1
echo "== meson test -C $dir (aarch64 under qemu-user)"
meson test -C "$dir" --no-rebuild --print-errorlogs \
	--timeout-multiplier "${QS_TIMEOUT_MULTIPLIER:-4}" \
	--suite policy --suite rc --suite sim --suite sim+dp --suite dp || exit 1
