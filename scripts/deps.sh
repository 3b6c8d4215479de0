#!/usr/bin/env bash
# Installs the Debian 12 packages qsteer builds and tests with. Idempotent: when every
# package is already installed it touches neither the network nor dpkg's lock.
set -euo pipefail

pkgs=(
	build-essential meson ninja-build pkg-config
	clang llvm lld libclang-rt-14-dev clang-format
	libcmocka-dev python3-numpy
	libopenmpi-dev openmpi-bin # qsteer-train --mpi and its test (test/trainer/mpi.sh)
	libsodium-dev libjansson-dev libinih-dev libpcap-dev
	gnuplot-nox
	tshark groff-base
	libmicrohttpd-dev libcurl4-openssl-dev curl # qsteer-gw, the engine executor, test/gw
)
# Optional parts: DPDK and BPF (their meson features are 'auto').
pkgs+=(libbpf-dev bpftool linux-libc-dev libelf-dev zlib1g-dev libdpdk-dev dpdk dpdk-dev tcpreplay iproute2 ethtool)

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps.sh: missing packages: ${missing[*]} (run as root to install them)" >&2
		exit 1
	fi
	echo "deps.sh: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
