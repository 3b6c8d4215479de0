#!/bin/sh
# replay.sh - pcap replay through qsteer-dp on net_pcap (--no-huge), then
# qsteer-pcap check: every frame equal to the scalar reference's, checksums valid,
# counters equal to the reference's and to what the generator put in the pcap.
# With BURST 1 (--burst 1 on both sides) every packet is decided alone: the
# per-packet contract the XDP program is compared against (docs/dataplane.md).
# usage: replay.sh QSTEER_DP|none QSTEER_PCAP QSTEERCTL MKPOLICY CONFIG TRACE [BURST]
set -eu
. "$(dirname "$0")/lib.sh"
BURST=${7:-32}
dp_script_start replay "$@"
CTLS="$CTL --socket $T/dp.sock"
"$MKPOL" 1 a.q8 replay-a
# >= 10,000 packets: requests, continuations, cancels, reports, every malformed kind
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 5000 --speedup 200 \
	--malformed 380 --out in.pcap --manifest manifest.json
# the daemon runs until every packet is in and the test stops it (no idle guess)
start_dp "replay-$BURST" "net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap" "$T/dp.sock" \
	--config "$CFG" --policy a.q8 --burst "$BURST" --stats-out stats.json
run_out "$(pcap_count in.pcap)"
stop_dp
"$PCAP" check --in in.pcap --out out.pcap --config "$CFG" --policy a.q8 --burst "$BURST" \
	--stats stats.json --manifest manifest.json
# the dataplane's bursts really were that size
python3 -c 'import json,sys; c=json.load(open("stats.json"))["counters"]; sys.exit(0 if c["bursts"] == -(-c["rx"] // '"$BURST"') else 1)' \
	|| { echo "FAIL: bursts are not of $BURST packets"; exit 1; }
