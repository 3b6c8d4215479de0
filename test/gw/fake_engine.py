#!/usr/bin/python3
"""fake_engine.py - CONFORMANCE FIXTURE, NOT AN ENGINE.

A small stand-in for an OpenAI-compatible serving engine (vLLM's
`vllm serve` OpenAI server, SGLang's `--api` server), built from their documented
HTTP API so that test/gw can exercise qsteer-gw and the agent's engine executor
without a GPU. Nothing here runs a model: the "completion" of a request is the
deterministic tokens "t0 t1 t2 ..." (max_tokens of them, default 16).

What it reproduces of the engines' API:
  POST /v1/completions, POST /v1/chat/completions
    non-streaming: one JSON object (object "text_completion" / "chat.completion",
      choices[], usage {prompt_tokens, completion_tokens, total_tokens})
    streaming ("stream": true): Server-Sent Events, each `data: {...}\\n\\n`
      (object "text_completion" / "chat.completion.chunk"; chat's first chunk
      carries delta.role), the last choice chunk with finish_reason "length",
      a usage chunk when stream_options.include_usage is true, then
      `data: [DONE]\\n\\n`
    errors: vLLM's error body {"object": "error", "message", "type", "param",
      "code"} with status 400 (bad JSON, missing prompt/messages)
  GET /metrics: Prometheus text in vLLM's names (vllm:num_requests_running,
    vllm:num_requests_waiting, vllm:gpu_cache_usage_perc,
    vllm:generation_tokens_total, vllm:time_to_first_token_seconds histogram)
  GET /health: 200

Test hooks (not part of any engine's API): a prompt containing FAIL500 gets a
500 error body; one containing SLOW paces its tokens --slow-ms apart; one
containing HANG sends nothing until the client goes away. --waiting and
--kv-usage fix the gauges the metrics report. Every request and every stream a
client closed early is logged to --log, one line each ("open ID", "done ID",
"client-closed ID"), so a test can wait for them.

Standard library only; run with /usr/bin/python3.
"""
import argparse
import json
import os
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE = {"running": 0, "gen_tokens": 0, "ttft": [], "seq": 0}
BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0,
           2.5, 5.0, 7.5, 10.0]
ARGS = None


def log(line):
    if ARGS.log:
        with LOCK:
            with open(ARGS.log, "a") as f:
                f.write(line + "\n")


def prompt_of(body, chat):
    if chat:
        parts = []
        for m in body["messages"]:
            c = m.get("content")
            parts.append(c if isinstance(c, str) else json.dumps(c))
        return "\n".join(parts)
    p = body["prompt"]
    return p if isinstance(p, str) else json.dumps(p)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):  # quiet
        pass

    def setup(self):
        super().setup()
        # as uvicorn (vLLM, SGLang) does through asyncio: no Nagle delay between
        # the headers and the body
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def send_json(self, status, obj):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def error(self, status, msg, typ="BadRequestError"):
        self.send_json(status, {"object": "error", "message": msg, "type": typ,
                                "param": None, "code": status})

    def do_GET(self):
        if self.path == "/health":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path != "/metrics":
            self.error(404, "Not Found", "NotFoundError")
            return
        with LOCK:
            running = STATE["running"]
            gen = STATE["gen_tokens"]
            ttft = list(STATE["ttft"])
        kv = ARGS.kv_usage if ARGS.kv_usage >= 0 else min(1.0, 0.05 * running)
        m = 'model_name="fake"'
        out = [
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            "vllm:num_requests_running{%s} %.1f" % (m, running),
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            "vllm:num_requests_waiting{%s} %.1f" % (m, ARGS.waiting),
            "# HELP vllm:gpu_cache_usage_perc GPU KV-cache usage. 1 means 100 percent usage.",
            "# TYPE vllm:gpu_cache_usage_perc gauge",
            "vllm:gpu_cache_usage_perc{%s} %s" % (m, repr(kv)),
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
            "vllm:generation_tokens_total{%s} %.1f" % (m, gen),
            "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in seconds.",
            "# TYPE vllm:time_to_first_token_seconds histogram",
        ]
        for le in BUCKETS:
            out.append('vllm:time_to_first_token_seconds_bucket{le="%s",%s} %.1f'
                       % (le, m, sum(1 for t in ttft if t <= le)))
        out.append('vllm:time_to_first_token_seconds_bucket{le="+Inf",%s} %.1f' % (m, len(ttft)))
        out.append("vllm:time_to_first_token_seconds_count{%s} %.1f" % (m, len(ttft)))
        out.append("vllm:time_to_first_token_seconds_sum{%s} %f" % (m, sum(ttft)))
        data = ("\n".join(out) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        t0 = time.monotonic()
        chat = self.path == "/v1/chat/completions"
        if self.path not in ("/v1/completions", "/v1/chat/completions"):
            self.error(404, "Not Found", "NotFoundError")
            return
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n)
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("not an object")
            prompt = prompt_of(body, chat)
        except (ValueError, KeyError, TypeError) as e:
            self.error(400, "invalid request: %s" % e)
            return
        if "FAIL500" in prompt:
            self.error(500, "the fixture was told to fail", "InternalServerError")
            return
        with LOCK:
            STATE["seq"] += 1
            rid = STATE["seq"]
            STATE["running"] += 1
        log("open %d" % rid)
        try:
            self.complete(body, chat, prompt, rid, t0)
        finally:
            with LOCK:
                STATE["running"] -= 1

    def complete(self, body, chat, prompt, rid, t0):
        ntok = int(body.get("max_tokens") or body.get("max_completion_tokens") or 16)
        slow = ARGS.slow_ms / 1000.0 if "SLOW" in prompt else 0.0
        model = body.get("model", "fake")
        cid = "cmpl-fake-%d" % rid
        created = int(time.time())
        ptok = max(1, len(prompt) // 4)
        obj = "chat.completion" if chat else "text_completion"
        if "HANG" in prompt:
            # hold the connection, sending nothing, until the client closes it
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            self.wfile.flush()
            self.connection.settimeout(0.05)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        break
                except socket.timeout:
                    continue
                except OSError:
                    break
            log("client-closed %d" % rid)
            self.close_connection = True
            return
        if not body.get("stream"):
            if slow:
                time.sleep(slow * ntok)
            text = "".join("t%d " % i for i in range(ntok))
            with LOCK:
                STATE["gen_tokens"] += ntok
                STATE["ttft"].append(time.monotonic() - t0)
            choice = {"index": 0, "finish_reason": "length", "logprobs": None}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            self.send_json(200, {"id": cid, "object": obj, "created": created, "model": model,
                                 "choices": [choice],
                                 "usage": {"prompt_tokens": ptok, "completion_tokens": ntok,
                                           "total_tokens": ptok + ntok}})
            log("done %d" % rid)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        cobj = "chat.completion.chunk" if chat else "text_completion"

        def event(choice_delta, finish=None, usage=None):
            ch = {"index": 0, "finish_reason": finish, "logprobs": None}
            if chat:
                ch["delta"] = choice_delta
            else:
                ch["text"] = choice_delta.get("content", "")
            o = {"id": cid, "object": cobj, "created": created, "model": model,
                 "choices": [] if usage else [ch]}
            if usage:
                o["usage"] = usage
            self.wfile.write(b"data: " + json.dumps(o).encode() + b"\n\n")
            self.wfile.flush()

        try:
            if chat:
                event({"role": "assistant", "content": ""})
            for i in range(ntok):
                if slow and i:
                    time.sleep(slow)
                event({"content": "t%d " % i}, "length" if i == ntok - 1 else None)
                if i == 0:
                    with LOCK:
                        STATE["ttft"].append(time.monotonic() - t0)
                with LOCK:
                    STATE["gen_tokens"] += 1
            so = body.get("stream_options") or {}
            if so.get("include_usage"):
                event({}, usage={"prompt_tokens": ptok, "completion_tokens": ntok,
                                 "total_tokens": ptok + ntok})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            log("done %d" % rid)
        except (BrokenPipeError, ConnectionResetError):
            log("client-closed %d" % rid)


class Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request, client_address):
        # a client that went away (the agent's scrape cut short at its exit) is
        # not an error worth a traceback
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        super().handle_error(request, client_address)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description="conformance fixture: a fake "
                                 "OpenAI-compatible engine (no model)")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--log")
    ap.add_argument("--slow-ms", type=float, default=200)
    ap.add_argument("--waiting", type=float, default=0)
    ap.add_argument("--kv-usage", type=float, default=-1,
                    help="fixed vllm:gpu_cache_usage_perc (default: 0.05 per running request)")
    ARGS = ap.parse_args()
    srv = Server((ARGS.host, ARGS.port), Handler)
    if ARGS.port_file:
        tmp = ARGS.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.replace(tmp, ARGS.port_file)
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
