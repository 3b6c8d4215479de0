#!/bin/sh
# live.sh - qsteer-xdp attached (generic mode) to a veth in a network namespace made
# here, between a client namespace and a backend namespace:
#   client [c0] <-> [c1] steer: XDP on c1, redirect to b1 [b1] <-> [b0] backend
# tcpreplay sends the dataplane's replay pcap from the client (pinned to one CPU, so
# the program's per-CPU state is one worker's); a raw AF_PACKET socket captures what
# reaches the backend side; qsteerctl swaps policies twice in the middle. Ages are
# configured long, so decisions do not depend on timing and qsteer-pcap check
# (bursts of one, --alt-policy) must find every frame -- nothing lost in the swaps --
# each equal to one policy's decision, both policies steering, and every counter.
# usage: live.sh QSTEER_XDP QSTEER_PCAP QSTEERCTL MKPOLICY CONFIG TRACE
set -eu
. "$(dirname "$0")/../dp/lib.sh"
XDP=$(abs "$1") PCAP=$(abs "$2") CTL=$(abs "$3") MKPOL=$(abs "$4") CFG=$(abs "$5") TRACE=$(abs "$6")
if [ "$(id -u)" != 0 ]; then echo "SKIP: needs root (namespaces, XDP)"; exit 77; fi
for t in ip tcpreplay python3 taskset; do
	command -v $t >/dev/null 2>&1 || { echo "SKIP: $t not installed"; exit 77; }
done
S=$$
NC=qsc$S NS=qss$S NB=qsb$S
T=$(mktemp -d /tmp/qsteer-xdp-live.XXXXXX)
XPID= RPID=
cleanup() {
	[ -n "$XPID" ] && kill "$XPID" 2>/dev/null && wait "$XPID" 2>/dev/null
	[ -n "$RPID" ] && kill "$RPID" 2>/dev/null && wait "$RPID" 2>/dev/null
	for n in $NC $NS $NB; do ip netns del $n 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
[ -n "${KEEP:-}" ] && trap - EXIT
ip netns add $NC 2>/dev/null || { echo "SKIP: cannot create network namespaces"; exit 77; }
ip netns add $NS
ip netns add $NB
for n in $NC $NS $NB; do
	# no IPv6 neighbour discovery or MLD: only the test's frames cross the wires
	ip netns exec $n sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
	ip -n $n link set lo up
done
ip link add c0 netns $NC type veth peer name c1 netns $NS
ip link add b1 netns $NS type veth peer name b0 netns $NB
ip -n $NC link set c0 up
ip -n $NS link set c1 up
ip -n $NS link set b1 up
ip -n $NB link set b0 up
cd "$T"
fail() { echo "FAIL: $*"; exit 1; }
DPPID= # lib.sh watches $DPPID: here the XDP daemon, set below
CTLS="$CTL --socket $T/xdp.sock"
"$MKPOL" 1 a.q8 live-a >/dev/null
"$MKPOL" 2 b.q8 live-b >/dev/null
# two backends sign their reports (docs/wire.md): the pcap then also holds
# untagged, wrongly keyed and replayed reports for gpu0, which the program must drop
awk '{ print }
	/^\[backend gpu0\]/ { print "report_key = 00112233445566778899aabbccddeeff" }
	/^\[backend gpu4\]/ { print "report_key = 0f1e2d3c4b5a69788796a5b4c3d2e1f0" }' "$CFG" > keyed.ini
CFG=$T/keyed.ini
"$PCAP" gen --config "$CFG" --trace "$TRACE" --limit 5000 --speedup 200 \
	--malformed 380 --out gen.pcap --manifest manifest.json >/dev/null
# timing-free configuration: nothing ages during the test
sed -e 's/^report_max_age_ms.*/report_max_age_ms = 600000/' \
    -e 's/^request_ttl_ms.*/request_ttl_ms = 600000/' \
    -e 's/^prefix_max_age_ms.*/prefix_max_age_ms = 600000/' \
    -e 's/^clock.*/clock = tsc/' "$CFG" > live.ini
cat > tools.py <<'PY'
import signal, socket, struct, sys, time
def strip(src, dst):
    # frames shorter than an Ethernet header never reach a driver, let alone XDP
    b = open(src, 'rb').read(); o = 24; out = [b[:24]]
    while o + 16 <= len(b):
        n = struct.unpack_from('<I', b, o + 8)[0]
        if n >= 14: out.append(b[o:o + 16 + n])
        o += 16 + n
    open(dst, 'wb').write(b''.join(out))
def recv(ifname, dst, ready):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
    s.bind((ifname, 0)); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 25)
    s.setsockopt(263, 8, 1)  # SOL_PACKET, PACKET_AUXDATA: the VLAN tag the stack took off
    s.settimeout(0.2)
    f = open(dst, 'wb'); f.write(struct.pack('<IHHiIII', 0xa1b2c3d4, 2, 4, 0, 0, 65535, 1))
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(time.time()))
    open(ready, 'w').close()
    idle = 0.0
    # asked to stop, it still drains what the kernel holds: it leaves only after a
    # full second with nothing to read (a busy machine may be slow to deliver)
    while not stop or idle < 1.0:
        try: d, anc, _, _ = s.recvmsg(65535, 256)
        except socket.timeout:
            idle += 0.2
            continue
        idle = 0.0
        for lvl, typ, data in anc:
            if lvl == 263 and typ == 8 and len(data) >= 20:
                st, _, _, _, _, tci, tpid = struct.unpack_from('<IIIHHHH', data)
                if st & 0x10:  # TP_STATUS_VLAN_VALID: put the tag back where it was
                    tpid = tpid if st & 0x40 else 0x8100
                    d = d[:12] + struct.pack('>HH', tpid, tci) + d[12:]
        t = time.time(); f.write(struct.pack('<IIII', int(t), int(t % 1 * 1e6), len(d), len(d)) + d)
    f.close()
def split(src, n1, n2):
    # three pcaps: packets [0, n1), [n1, n2), [n2, end)
    b = open(src, 'rb').read(); o = 24; recs = []
    while o + 16 <= len(b):
        n = struct.unpack_from('<I', b, o + 8)[0]; recs.append(b[o:o + 16 + n]); o += 16 + n
    for i, (lo, hi) in enumerate(((0, n1), (n1, n2), (n2, len(recs)))):
        open('part%d.pcap' % i, 'wb').write(b[:24] + b''.join(recs[lo:hi]))
    print(len(recs))
if sys.argv[1] == 'strip': strip(sys.argv[2], sys.argv[3])
elif sys.argv[1] == 'split': split(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
else: recv(sys.argv[2], sys.argv[3], sys.argv[4])
PY
python3 tools.py strip gen.pcap in.pcap
ip netns exec $NB python3 tools.py recv b0 cap.pcap ready &
RPID=$!
ip netns exec $NS "$XDP" --config live.ini --iface c1 --mode generic --egress b1 \
	--policy a.q8 --control "$T/xdp.sock" --stats-out xdp.json \
	--prometheus 127.0.0.1:0 2> xdp.log &
XPID=$!
DPPID=$XPID
i=0
while [ ! -S "$T/xdp.sock" ] || [ ! -e ready ]; do
	i=$((i + 1)); [ $i -gt 100 ] && { echo "FAIL: qsteer-xdp or the receiver did not start"; exit 1; }
	sleep 0.1
done
# three parts: a.q8 steers the first, b.q8 the second, a.q8 (rolled back) the third;
# each swap waits until the program has seen every packet sent before it
NTOT=$(python3 tools.py split in.pcap 3000 7000)
send() { # $1: part, $2: packets the program must have seen after it
	ip netns exec $NC taskset -c 0 tcpreplay -q -i c0 --pps 4000 "part$1.pcap" \
		>> tcpreplay.log 2>&1 || { cat tcpreplay.log; fail "tcpreplay part $1"; }
	wait_until "xdp rx packets" rx_packets "$2"
}
send 0 3000
$CTLS policy load "$T/b.q8"
send 1 7000
$CTLS policy rollback
$CTLS policy show
send 2 "$NTOT"
$CTLS stats > /dev/null
# operator parity with qsteer-dp: a status with the policy and the XDP mode (no
# "(null)"), and Prometheus, where the forged reports of the pcap show by reason
$CTLS status | tee status.txt
grep -q "(null)" status.txt && fail "status prints (null)"
grep -q "XDP generic mode" status.txt || fail "status has no XDP mode"
grep -q "^mode  *active" status.txt || fail "status has no policy mode"
PORT=$(sed -n 's/.*prometheus \/metrics on port \([0-9]*\).*/\1/p' xdp.log)
[ -n "$PORT" ] || { cat xdp.log; fail "no prometheus port in the log"; }
ip netns exec $NS python3 "$(dirname "$0")/../dp/prom_fetch.py" "$PORT" metrics.json ||
	fail "prometheus scrape"
python3 - "$NTOT" <<'PY' || fail "prometheus metrics"
import json, sys
m = json.load(open("metrics.json"))["m"]
assert m["qsteer_rx_total"] == int(sys.argv[1]), (m["qsteer_rx_total"], sys.argv[1])
forged = m['qsteer_drops_total{reason="report-source"}']
auth = m['qsteer_drops_total{reason="report-auth"}']
replay = m['qsteer_drops_total{reason="report-replay"}']
assert forged > 0, "forged reports not counted"
assert auth > 0 and replay > 0, ("forged tags or replays not counted", auth, replay)
print(f"prometheus: rx {m['qsteer_rx_total']}, reports dropped: {forged} wrong source, "
      f"{auth} untagged or wrong tag, {replay} replayed")
PY
"$CTL" --socket "$T/xdp.sock" shutdown > /dev/null
wait $XPID; XPID=
kill $RPID; wait $RPID || true; RPID=
grep -Eq "Failed packets: *[1-9]" tcpreplay.log && { echo "FAIL: tcpreplay did not send everything"; exit 1; }
"$PCAP" check --burst 1 --in in.pcap --out cap.pcap --config live.ini --policy a.q8 \
	--alt-policy b.q8 --stats xdp.json | tee check.log | tail -3
grep -q ' 0 like neither' check.log || { echo "FAIL: a packet matched neither policy"; exit 1; }
grep -Eq 'like a.q8 only, [1-9][0-9]* like b.q8 only' check.log ||
	{ echo "FAIL: the swap to b.q8 did not steer anything"; exit 1; }
echo "ebpf-live: OK"
