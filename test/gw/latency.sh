#!/bin/bash
# latency.sh [BUILD_DIR] [N] - what qsteer-gw and the agent's engine executor add to
# a request: N non-streamed completions (8 tokens) straight to the fixture engine
# (fake_engine.py) and N through curl's path (qsteer-gw -> agent -> fixture),
# alternating, one at a time, in the same run; median and p99 of each in ms.
# On loopback, no dataplane. docs/deploy.md records a run.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
B=$(cd "${1:-$HERE/../../build}" && pwd) || exit 1
N=${2:-1000}
PY=/usr/bin/python3
T=$(mktemp -d /tmp/qsteer-gwlat.XXXXXX)
E= A= G= R=
trap 'kill $G $A $R $E 2>/dev/null; wait; rm -rf "$T"' EXIT
cd "$T" || exit 1
# waitf FILE PID: until FILE is written, while PID lives (bounded: 120 s)
waitf() {
	i=0
	until [ -s "$1" ]; do
		kill -0 "$2" 2>/dev/null || { echo "latency.sh: $1: its daemon exited"; exit 1; }
		i=$((i + 1)); [ $i -lt 2400 ] || { echo "latency.sh: no $1"; exit 1; }
		sleep 0.05
	done
}
timeout 3600 $PY "$HERE/fake_engine.py" --port-file eng.port & E=$!
waitf eng.port $E
# a port the kernel picked and let go (qsteer-agent has no --port-file); the
# agent's first report to R says it is bound
timeout 3600 $PY "$HERE/sse_client.py" reports rep.port reports.txt & R=$!
waitf rep.port $R
AP=$($PY -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
timeout 3600 "$B/agent/qsteer-agent" --executor "http://127.0.0.1:$(cat eng.port)" \
	--listen "127.0.0.1:$AP" --report-to "127.0.0.1:$(cat rep.port)" 2> ag.log & A=$!
waitf reports.txt $A
timeout 3600 "$B/gw/qsteer-gw" --listen 127.0.0.1:0 --service "127.0.0.1:$AP" \
	--port-file gw.port 2> gw.log & G=$!
waitf gw.port $G
$PY "$HERE/sse_client.py" latency "http://127.0.0.1:$(cat gw.port)" \
	"http://127.0.0.1:$(cat eng.port)" "$N"
