#!/bin/sh
# install.sh - what `meson install` puts where (test suite 'install'; docs/operations.md).
#   install.sh tree    MESON BUILD_ROOT PREFIX BINDIR MANDIR SYSCONFDIR DATADIR UNITDIR PROG...
#   install.sh systemd (same arguments)
# Both install the build into a temporary DESTDIR. `tree` checks that every program
# built has its binary and man page there, the example configs (with every
# @VARIABLE@ substituted), the units, the dissector, the dashboard, the policies
# and the profiles. `systemd` runs `systemd-analyze verify` on the installed units
# (their programs and man pages resolved inside the DESTDIR); it skips (77) where
# systemd-analyze is not installed.
set -eu
MODE=$1 MESON=$2 BUILD=$3 PREFIX=$4 BINDIR=$5 MANDIR=$6 SYSCONFDIR=$7 DATADIR=$8 UNITDIR=$9
shift 9
fail() { echo "FAIL: $*"; exit 1; }
if [ "$MODE" = systemd ] && ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze is not installed"
	exit 77
fi
T=$(mktemp -d /tmp/qsteer-install.XXXXXX)
trap 'rm -rf "$T"' EXIT
"$MESON" install -C "$BUILD" --no-rebuild --quiet --destdir "$T" >"$T.log" 2>&1 ||
	{ cat "$T.log"; rm -f "$T.log"; fail "meson install"; }
rm -f "$T.log"

case $MODE in
tree)
	for p in "$@"; do
		[ -x "$T$BINDIR/$p" ] || fail "$BINDIR/$p not installed"
		[ -s "$T$MANDIR/man1/$p.1" ] || fail "$MANDIR/man1/$p.1 not installed"
	done
	# and no program is installed without its page
	for f in "$T$BINDIR"/*; do
		[ -s "$T$MANDIR/man1/${f##*/}.1" ] || fail "$BINDIR/${f##*/} is installed without a man page"
	done
	for f in "$SYSCONFDIR/qsteer/dp.ini.example" "$SYSCONFDIR/qsteer/agent.ini.example" \
		"$SYSCONFDIR/qsteer/qsteer-dp.env.example" "$SYSCONFDIR/qsteer/qsteer-xdp.env.example" \
		"$SYSCONFDIR/qsteer/qsteer-agent.env.example" \
		"$UNITDIR/qsteer-dp.service" "$UNITDIR/qsteer-xdp.service" "$UNITDIR/qsteer-agent.service" \
		"$DATADIR/qsteer/wireshark/qsteer.lua" "$DATADIR/qsteer/grafana/qsteer.json" \
		"$DATADIR/qsteer/policies/default-router.q8" "$DATADIR/qsteer/policies/default-batch.q8" \
		"$DATADIR/qsteer/profiles/a100-80gb-llama2-7b.ini"; do
		[ -s "$T$f" ] || fail "$f not installed"
	done
	if grep -l '@[A-Z]*@' "$T$SYSCONFDIR"/qsteer/* "$T$UNITDIR"/qsteer-*.service; then
		fail "unsubstituted @VARIABLE@ in the files above"
	fi
	# the units run the installed programs and read the installed env files
	grep -q "^ExecStart=$BINDIR/qsteer-dp " "$T$UNITDIR/qsteer-dp.service" || fail "qsteer-dp ExecStart"
	grep -q "^ExecReload=$BINDIR/qsteerctl --socket /run/qsteer/dp.sock policy load " \
		"$T$UNITDIR/qsteer-dp.service" || fail "qsteer-dp ExecReload"
	grep -q "^EnvironmentFile=$SYSCONFDIR/qsteer/qsteer-dp.env$" "$T$UNITDIR/qsteer-dp.service" ||
		fail "qsteer-dp EnvironmentFile"
	# the agent's example config names a profile that is installed
	prof=$(sed -n 's/^profile *= *\([^ ;]*\).*/\1/p' "$T$SYSCONFDIR/qsteer/agent.ini.example")
	[ -s "$T$prof" ] || fail "agent.ini.example's profile $prof is not installed"
	# the example dataplane config loads: qsteer-pcap parses it with the dataplane's parser
	cp "$T$SYSCONFDIR/qsteer/dp.ini.example" "$T/dp.ini"
	"$T$BINDIR/qsteer-pcap" gen --config "$T/dp.ini" --synthetic 10 --out "$T/x.pcap" >/dev/null ||
		fail "dp.ini.example does not load"
	n=$(find "$T" -type f | wc -l)
	echo "install tree: $n files, $# programs with man pages, units, configs, dissector, dashboard"
	;;
systemd)
	mkdir "$T/verify"
	for u in qsteer-dp qsteer-xdp qsteer-agent; do
		if [ ! -x "$T$BINDIR/$u" ]; then
			echo "$u not built: its unit is not verified"
			continue
		fi
		sed "s#=$BINDIR/#=$T$BINDIR/#g" "$T$UNITDIR/$u.service" >"$T/verify/$u.service"
	done
	MANPATH="$T$MANDIR" systemd-analyze verify "$T"/verify/*.service >"$T/out" 2>&1 || {
		cat "$T/out"
		fail "systemd-analyze verify"
	}
	if grep qsteer "$T/out"; then
		fail "systemd-analyze verify warns about the units"
	fi
	echo "systemd-analyze verify: qsteer-dp, qsteer-xdp, qsteer-agent clean"
	;;
*) fail "unknown mode $MODE" ;;
esac
