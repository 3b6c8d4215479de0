# lib.sh - sourced by the qsteer-dp test scripts: drive a running qsteer-dp through
# its control socket instead of guessing how long anything takes. A test starts the
# dataplane with --rx-hold (or lets it run free), meters traffic in whole bursts with
# `qsteerctl rx allow N`, waits on counters, and stops the daemon itself
# (`qsteerctl shutdown`). Nothing here depends on the machine's speed: every wait is
# for a counter to reach a value, bounded by a deadline (QS_WAIT_S, default 120 s)
# that only a stuck dataplane reaches.
# Needs: $CTLS (qsteerctl --socket PATH) and $DPPID (the daemon).
#
# The tests start daemons under `timeout 3600`: a backstop so that a daemon never
# outlives a stuck test for long, never a limit a slow run reaches (meson's timeout
# times QS_TIMEOUT_MULTIPLIER comes first, and the EXIT/INT/TERM traps stop the
# daemon). A `timeout 300` here once killed qsteer-dp in the middle of dp-hotswap
# under ASan beside stress-ng (the test had run 305 s): the daemon vanished without
# a word in its log and the next qsteerctl found nothing listening.

QS_WAIT_S=${QS_WAIT_S:-120}

# The scripts' common start. Source this file first, while $0 still resolves.
# abs PATH: meson passes paths relative to the build directory; the tests cd away
abs() { case $1 in /*|none) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

# need_dp DP: skip (exit 77) without a qsteer-dp build or without root
need_dp() {
	if [ "$1" = none ]; then echo "SKIP: qsteer-dp not built (no DPDK)"; exit 77; fi
	if [ "$(id -u)" != 0 ]; then echo "SKIP: DPDK needs root here"; exit 77; fi
}

# enter_tmpdir NAME: work in a fresh /tmp/qsteer-NAME.XXXXXX ($T), removed on exit;
# the daemon whose pid the test keeps in $DPPID is stopped on exit, Ctrl-C or TERM
enter_tmpdir() {
	T=$(mktemp -d "/tmp/qsteer-$1.XXXXXX")
	DPPID=
	trap qs_cleanup EXIT
	trap "exit 143" INT TERM
	cd "$T"
}
qs_cleanup() { [ -n "$DPPID" ] && kill "$DPPID" 2>/dev/null; rm -rf "$T"; }

# dp_script_start NAME QSTEER_DP|none QSTEER_PCAP QSTEERCTL MKPOLICY CONFIG TRACE: the
# common start of the scripts meson runs with those six arguments: $DP $PCAP $CTL
# $MKPOL $CFG $TRACE as absolute paths, a skip without qsteer-dp or root, and the
# work in a fresh temporary directory (enter_tmpdir NAME)
dp_script_start() {
	_name=$1
	shift
	DP=$(abs "$1") PCAP=$(abs "$2") CTL=$(abs "$3") MKPOL=$(abs "$4")
	CFG=$(abs "$5") TRACE=$(abs "$6")
	need_dp "$DP"
	enter_tmpdir "$_name"
}

# dp_eal NAME: the EAL arguments every test gives qsteer-dp: no hugepages, no PCI
# devices, a file prefix of its own, lcores 0 and 1 unless $DP_LCORES says otherwise
dp_eal() { echo "--no-huge -m 256 --no-pci --file-prefix qsteer-$1-$$ ${DP_LCORES:--l 0,1}"; }

# start_dp NAME VDEV SOCKET ARGS...: qsteer-dp in the background on the virtual
# device VDEV with the daemon's ARGS and its control socket at SOCKET; its output in
# dp.log, its pid in $DPPID; returns once the socket answers ($CTLS must name it)
start_dp() {
	_name=$1 _vdev=$2 _sock=$3
	shift 3
	# shellcheck disable=SC2046
	timeout 3600 "$DP" $(dp_eal "$_name") --vdev "$_vdev" -- "$@" --control "$_sock" \
		> dp.log 2>&1 &
	DPPID=$!
	wait_socket "$_sock"
}

# fail MSG: the test failed (with the daemon's last words, if it has a log here)
fail() { echo "FAIL: $*"; [ -f dp.log ] && tail -20 dp.log; exit 1; }

# pcap_count FILE: the number of packets in a classic pcap file
pcap_count() {
	python3 - "$1" <<'PY'
import struct, sys
d = open(sys.argv[1], "rb").read()
e = "<" if d[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
off, n = 24, 0
while off + 16 <= len(d):
    incl = struct.unpack(e + "I", d[off + 8:off + 12])[0]
    off += 16 + incl
    n += 1
print(n)
PY
}

# wait_socket PATH: the daemon is up and answers
wait_socket() {
	i=0
	while ! $CTLS status > /dev/null 2>&1; do
		kill -0 "$DPPID" 2> /dev/null || fail "qsteer-dp exited before its control socket answered"
		i=$((i + 1))
		[ $i -lt $((QS_WAIT_S * 20)) ] || fail "no control socket at $1 after ${QS_WAIT_S} s"
		sleep 0.05
	done
}

# rx_bursts: bursts the dataplane has received so far
rx_bursts() {
	$CTLS rx | sed -n 's/.* \([0-9]*\) bursts received$/\1/p'
}

# rx_packets: packets the dataplane has received so far
rx_packets() {
	$CTLS status | sed -n 's/^rx \/ tx *\([0-9]*\) \/.*/\1/p'
}

# wait_until WHAT CMD TARGET: poll until $(CMD) >= TARGET
wait_until() {
	deadline=$(($(date +%s) + QS_WAIT_S))
	while :; do
		v=$($2)
		[ -n "$v" ] && [ "$v" -ge "$3" ] && return 0
		kill -0 "$DPPID" 2> /dev/null || fail "qsteer-dp died while waiting for $1 >= $3"
		[ "$(date +%s)" -lt "$deadline" ] || fail "$1 stuck at ${v:-?} < $3 for ${QS_WAIT_S} s"
		sleep 0.01
	done
}

# wait_bursts N: at least N bursts received
wait_bursts() { wait_until bursts rx_bursts "$1"; }

# run_out N: let the rest of the traffic through and wait for all N packets
run_out() {
	$CTLS rx release > /dev/null
	wait_until "rx packets" rx_packets "$1"
}

# stop_dp: ask the daemon to exit (it writes --stats-out) and reap it
stop_dp() {
	$CTLS shutdown > /dev/null
	wait "$DPPID" || { DPPID=; fail "qsteer-dp exited with an error"; }
	DPPID=
}
