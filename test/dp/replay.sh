#!/bin/sh
# replay.sh - pcap replay through qsteer-dp on net_pcap (--no-huge), then
# qsteer-pcap check: every frame equal to the scalar reference's, checksums valid,
# counters equal to the reference's and to what the generator put in the pcap.
# usage: replay.sh QSTEER_DP|none QSTEER_PCAP MKPOLICY CONFIG TRACE
set -eu
DP=$1 PCAP=$2 MKPOL=$3 CFG=$4 TRACE=$5
# meson passes paths relative to the build directory; we cd elsewhere
abs() { case $1 in /*|none) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
DP=$(abs "$DP")
PCAP=$(abs "$PCAP")
MKPOL=$(abs "$MKPOL")
CFG=$(abs "$CFG")
TRACE=$(abs "$TRACE")
if [ "$DP" = none ]; then echo "SKIP: qsteer-dp not built (no DPDK)"; exit 77; fi
if [ "$(id -u)" != 0 ]; then echo "SKIP: DPDK needs root here"; exit 77; fi
T=$(mktemp -d /tmp/qsteer-replay.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
"$MKPOL" 1 a.q8 replay-a
# >= 10,000 packets: requests, continuations, cancels, reports, every malformed kind
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 5000 --speedup 200 \
	--malformed 380 --out in.pcap --manifest manifest.json
timeout 60 "$DP" --no-huge -m 256 --no-pci --file-prefix "qsteer-replay-$$" -l 0,1 \
	--vdev "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" -- \
	--config "$CFG" --policy a.q8 --idle-exit-ms 500 --stats-out stats.json
"$PCAP" check --in in.pcap --out out.pcap --config "$CFG" --policy a.q8 \
	--stats stats.json --manifest manifest.json
