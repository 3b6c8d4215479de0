#!/bin/bash
# e2e.sh QSTEER_GW QSTEER_AGENT FAKE_ENGINE SSE_CLIENT - the HTTP path end to end
# on loopback (issue 18): curl -> qsteer-gw -> qsteer-agent --executor http://
# (the agent's engine executor) -> fake_engine.py (a conformance fixture, not an
# engine) -> back. No dataplane: the gateway's service address is
# the agent's, so this runs without root or DPDK; dp.sh runs the path with
# qsteer-dp in it.
#
# Nothing here depends on how fast anything runs: every wait is for a condition
# (a file, a log line, a report's value), polled with a bound (QS_WAIT_S, default
# 120 s) that only a stuck daemon reaches. Daemons run under `timeout 3600` as a
# backstop (test/dp/lib.sh says why) and the EXIT trap stops them on any failure.
set -u
. "$(dirname "$0")/lib.sh"
GW=$(abs "$1") AG=$(abs "$2") ENG=$(abs "$3") CLI=$(abs "$4")
T=$(mktemp -d /tmp/qsteer-gw.XXXXXX)
LOGS="eng.log ag.log gw.log reports.txt out"
EPID= APID= GPID= RPID=
cleanup() {
	for p in $GPID $APID $EPID $RPID; do kill "$p" 2>/dev/null; done
	for p in $GPID $APID $EPID $RPID; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap "exit 143" INT TERM
cd "$T" || exit 1

# tries: the bound of a hand-written wait loop
tries() { echo $((QS_WAIT_S * 20)); }
count() { grep -c "^$1 " eng.log 2>/dev/null || echo 0; }
ge() { [ "$($1 "$2")" -ge "$3" ]; }

start_engine() {
	rm -f eng.port
	timeout 3600 $PY "$ENG" --port "${1:-0}" --port-file eng.port --log eng.log \
		--waiting 3 --kv-usage 0.5 --slow-ms 100 &
	EPID=$!
	i=0
	until [ -s eng.port ]; do
		kill -0 $EPID 2>/dev/null || fail "the fixture exited"
		i=$((i + 1)); [ $i -lt "$(tries)" ] || fail "no fixture port"
		sleep 0.05
	done
	EP=$(cat eng.port)
}

start_engine
timeout 3600 $PY "$CLI" reports rep.port reports.txt &
RPID=$!
wait_for "report listener" test -s rep.port
# the engine scraped every 50 ms: a config key, not an option
printf '[engine]\nscrape_interval_ms = 50\n' > agent.ini
AP=$(free_udp_port) || fail "no free UDP port for the agent"
timeout 3600 "$AG" -c agent.ini --executor "http://127.0.0.1:$EP" --listen "127.0.0.1:$AP" \
	--report-to "127.0.0.1:$(cat rep.port)" --backend-id 3 --engine-max-inflight 4 2> ag.log &
APID=$!
WATCH=$APID
# its loop sends the reports, so a report says its socket is bound
wait_for "the agent's first report" test -s reports.txt
timeout 3600 "$GW" --listen 127.0.0.1:0 --service "127.0.0.1:$AP" \
	--port-file gw.port 2> gw.log &
GPID=$!
WATCH="$GPID $APID"
wait_for "gateway port" test -s gw.port
GP=$(cat gw.port)
URL=http://127.0.0.1:$GP

# post PATH BODY [curl args]: the status code, the body in ./out
post() {
	p=$1 b=$2
	shift 2
	curl -sS -o out -w '%{http_code}' -m 300 "$@" "$URL$p" -H 'Content-Type: application/json' \
		--data-binary "$b"
}
# the body in ./out is an OpenAI-style error with this code
is_error() {
	$PY - "$1" <<'PY' || fail "not an OpenAI error body: $(head -c 300 out)"
import json, sys
o = json.load(open("out"))
e = o["error"]
assert isinstance(e["message"], str) and e["message"] and e["code"] == int(sys.argv[1]), o
PY
}

echo "1. non-streamed completion"
c=$(post /v1/completions '{"model":"fake","prompt":"hello","max_tokens":4}')
[ "$c" = 200 ] || fail "completion: status $c"
$PY -c '
import json; o = json.load(open("out"))
assert o["object"] == "text_completion" and o["choices"][0]["text"] == "t0 t1 t2 t3 ", o
assert o["usage"]["completion_tokens"] == 4, o' || fail "completion body"

echo "2. non-streamed chat"
c=$(post /v1/chat/completions '{"model":"fake","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"max_tokens":3}')
[ "$c" = 200 ] || fail "chat: status $c"
$PY -c '
import json; o = json.load(open("out"))
assert o["choices"][0]["message"]["content"] == "t0 t1 t2 ", o' || fail "chat body"

echo "3. streamed chat with usage"
c=$(post /v1/chat/completions '{"model":"fake","messages":[{"role":"user","content":"hi"}],"max_tokens":5,"stream":true,"stream_options":{"include_usage":true}}' -N)
[ "$c" = 200 ] || fail "stream: status $c"
$PY - <<'PY' || fail "SSE stream"
import json
raw = open("out").read()
assert raw.endswith("data: [DONE]\n\n"), raw[-100:]
ev = [e for e in raw.split("\n\n") if e]
assert all(e.startswith("data: ") for e in ev), ev
objs = [json.loads(e[6:]) for e in ev[:-1]]
text = "".join(o["choices"][0]["delta"].get("content", "") for o in objs if o["choices"])
assert text == "t0 t1 t2 t3 t4 ", text
assert objs[0]["choices"][0]["delta"]["role"] == "assistant"
assert objs[-1]["usage"]["completion_tokens"] == 5
PY

echo "4. streamed completion"
c=$(post /v1/completions '{"prompt":["a","b"],"max_tokens":2,"stream":true}' -N)
[ "$c" = 200 ] || fail "stream completion: status $c"
grep -q '"text": "t1 "' out && tail -c 14 out | grep -q 'data: \[DONE\]' || fail "stream completion body"

echo "5. malformed requests: OpenAI-style errors, the gateway stays up"
bad() {
	c=$(post "$1" "$2")
	[ "$c" = "$3" ] || fail "$1 '$2': status $c, want $3"
	is_error "$3"
}
bad /v1/completions '{"prompt":' 400
bad /v1/completions '[1,2]' 400
bad /v1/completions '{"model":"fake"}' 400
bad /v1/completions '{"prompt":{"x":1}}' 400
bad /v1/completions '{"prompt":"x","stream":"yes"}' 400
bad /v1/completions '{"prompt":"x","max_tokens":-1}' 400
bad /v1/completions '{"prompt":"x","max_tokens":"many"}' 400
bad /v1/completions '{"prompt":"x","model":7}' 400
bad /v1/chat/completions '{"messages":[]}' 400
bad /v1/chat/completions '{"messages":[{"content":"no role"}]}' 400
bad /v1/chat/completions '{"messages":"hi"}' 400
bad /v1/chat/completions "$(printf '{"messages":[{"role":"user","content":"\xff\xfe"}]}')" 400
bad /v1/embeddings '{"input":"x"}' 404
bad /v1/completions '' 400
c=$(curl -sS -o out -w '%{http_code}' "$URL/v1/completions")
[ "$c" = 405 ] && is_error 405 || fail "GET: status $c"
head -c 80000 /dev/zero | tr '\0' a > big
c=$(curl -sS -o out -w '%{http_code}' "$URL/v1/completions" --data-binary "{\"prompt\":\"$(cat big)\"}")
[ "$c" = 413 ] && is_error 413 || fail "big body: status $c"
c=$(post /v1/completions '{"prompt":"x"}' -H 'X-QSteer-Priority: 9')
[ "$c" = 400 ] && is_error 400 || fail "bad priority header: status $c"
c=$(post /v1/completions '{"prompt":"x"}' -H 'X-QSteer-Difficulty: 4')
[ "$c" = 400 ] && is_error 400 || fail "bad difficulty header: status $c"
# a difficulty travels in the request's first packet and the agent takes it
c=$(post /v1/completions '{"prompt":"x","max_tokens":2}' -H 'X-QSteer-Difficulty: 3')
[ "$c" = 200 ] || fail "difficulty 3: status $c $(cat out)"
kill -0 $GPID || fail "the gateway died"
# a 60 KB prompt goes over many QRP packets and comes back
head -c 60000 /dev/zero | tr '\0' b > mid
c=$(post /v1/completions "{\"prompt\":\"$(cat mid)\",\"max_tokens\":2}")
[ "$c" = 200 ] && grep -q 't0 t1 "' out || fail "60 KB prompt: status $c"

echo "6. engine error passed through"
c=$(post /v1/completions '{"prompt":"FAIL500","max_tokens":2}')
[ "$c" = 500 ] && grep -q '"object": "error"' out || fail "engine 500: status $c $(cat out)"

echo "7. slow engine"
c=$(post /v1/completions '{"prompt":"SLOW","max_tokens":5,"stream":true}' -N)
[ "$c" = 200 ] && [ "$(grep -c '^data: ' out)" = 6 ] || fail "slow stream: status $c"

echo "8. admission: 12 at once through an in-flight cap of 4"
cpids=
for i in $(seq 12); do
	curl -sS -m 300 -o "par$i" "$URL/v1/completions" \
		--data-binary '{"prompt":"SLOW par","max_tokens":3}' &
	cpids="$cpids $!"
done
for p in $cpids; do wait "$p" || fail "a parallel curl failed"; done
for i in $(seq 12); do grep -q '"text": "t0 t1 t2 "' "par$i" || fail "parallel $i: $(cat par$i)"; done

echo "9. cancel on client disconnect reaches the engine as a closed stream"
n0=$(count client-closed)
$PY "$CLI" disconnect 127.0.0.1 "$GP" /v1/completions '{"prompt":"SLOW cut","max_tokens":500,"stream":true}' ||
	fail "disconnect client"
wait_for "closed stream at the engine" ge count client-closed $((n0 + 1))
$PY "$CLI" disconnect-after-open 127.0.0.1 "$GP" /v1/completions '{"prompt":"HANG","max_tokens":5,"stream":true}' eng.log ||
	fail "disconnect client (engine silent)"
wait_for "closed silent stream at the engine" ge count client-closed $((n0 + 2))
grep -q "cancels_total [1-9]" <(curl -sS "$URL/metrics") || fail "no cancel counted"

echo "10. the engine's queue and KV state in the agent's reports"
rep_ok() {
	[ -s reports.txt ] || return 1
	read -r w r kvu kvt fl rcv dn < reports.txt
	[ "$w" -ge 3 ] && [ "$kvu" = 500 ] && [ "$kvt" = 1000 ] && [ "$fl" = 0 ] && [ "$dn" -ge 10 ]
}
wait_for "report with waiting >= 3, KV 500/1000" rep_ok

echo "11. engine restart"
kill $EPID; wait $EPID 2>/dev/null; EPID=
c=$(post /v1/completions '{"prompt":"down","max_tokens":2}')
[ "$c" = 502 ] || [ "$c" = 504 ] || fail "engine down: status $c"
is_error "$c"
rep_draining() { [ -s reports.txt ] && read -r w r kvu kvt fl rest < reports.txt && [ "$fl" = 1 ]; }
wait_for "draining flag while the engine is down" rep_draining
start_engine "$EP"
c=$(post /v1/completions '{"prompt":"back","max_tokens":2}')
[ "$c" = 200 ] && grep -q 't0 t1 "' out || fail "after restart: status $c"
rep_up() { [ -s reports.txt ] && read -r w r kvu kvt fl rest < reports.txt && [ "$fl" = 0 ]; }
wait_for "draining flag cleared" rep_up

kill $GPID; wait $GPID; g=$?; GPID=
kill $APID; wait $APID; a=$?; APID=
[ $g = 0 ] || fail "qsteer-gw exited with $g"
[ $a = 0 ] || fail "the agent exited with $a"
grep "^qsteer-agent: [0-9]* datagrams" ag.log
echo "PASS"
