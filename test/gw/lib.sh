# lib.sh - sourced by test/gw's scripts (e2e.sh, dp.sh), first, while $0 resolves.
# Waits are for conditions, polled 50 ms apart and bounded by QS_WAIT_S (default
# 120 s), a bound only a stuck daemon reaches: nothing depends on how fast the
# machine is.
QS_WAIT_S=${QS_WAIT_S:-120}
PY=/usr/bin/python3
WATCH= LOGS=

# abs PATH: meson passes paths relative to the build directory; the tests cd away
abs() { case $1 in /*|none) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }

# free_udp_port: a loopback UDP port the kernel picked and let go, for a daemon
# that cannot say which port it bound (qsteer-agent has no --port-file); another
# process taking it meanwhile makes the daemon exit, which wait_for reports
free_udp_port() {
	$PY -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# fail MSG: the test failed; the tails of the logs named in $LOGS say why
fail() {
	echo "FAIL: $*"
	for f in $LOGS; do
		[ -f "$f" ] && { echo "--- $f"; tail -20 "$f"; }
	done
	exit 1
}

# wait_for WHAT CMD...: until CMD succeeds, while every pid in $WATCH lives
wait_for() {
	what=$1
	shift
	i=0
	until "$@"; do
		for p in $WATCH; do
			kill -0 "$p" 2>/dev/null || fail "a daemon died while waiting for $what"
		done
		i=$((i + 1))
		[ $i -lt $((QS_WAIT_S * 20)) ] || fail "no $what after ${QS_WAIT_S} s"
		sleep 0.05
	done
}
