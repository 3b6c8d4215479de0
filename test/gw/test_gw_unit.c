/*
 * test_gw_unit.c - the engine executor's pure parts: /metrics text in vLLM's and
 * SGLang's names, the TTFT p99 from two histogram snapshots, and the response
 * datagram extension (agent_http.h) round trip and refusals.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "qsteer/agent_http.h"

static int fails;
#define CHECK(c)                                                                                   \
	do {                                                                                       \
		if (!(c)) {                                                                        \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c);               \
			fails++;                                                                   \
		}                                                                                  \
	} while (0)

static const char vllm1[] =
    "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
    "# TYPE vllm:num_requests_running gauge\n"
    "vllm:num_requests_running{model_name=\"m\"} 3.0\n"
    "vllm:num_requests_waiting{model_name=\"m\"} 7.0\n"
    "vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.42\n"
    "vllm:generation_tokens_total{model_name=\"m\"} 1000.0\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"0.01\",model_name=\"m\"} 0.0\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"0.1\",model_name=\"m\"} 10.0\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"1.0\",model_name=\"m\"} 10.0\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 10.0\n"
    "vllm:time_to_first_token_seconds_count{model_name=\"m\"} 10.0\n";
static const char vllm2[] =
    "vllm:num_requests_running{model_name=\"m\"} 1\n"
    "vllm:num_requests_waiting{model_name=\"m\"} 0\n"
    "vllm:kv_cache_usage_perc{model_name=\"m\"} 0.97\n"
    "vllm:generation_tokens_total{model_name=\"m\"} 1500\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"0.01\",model_name=\"m\"} 0\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"0.1\",model_name=\"m\"} 10\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"1.0\",model_name=\"m\"} 110\n"
    "vllm:time_to_first_token_seconds_bucket{le=\"+Inf\",model_name=\"m\"} 110\n";
static const char sglang[] = "sglang:num_running_reqs{model_name=\"a\"} 2\n"
			     "sglang:num_running_reqs{model_name=\"b\"} 4\n"
			     "sglang:num_queue_reqs{model_name=\"a\"} 5\n"
			     "sglang:token_usage{model_name=\"a\"} 0.25\n"
			     "sglang:token_usage{model_name=\"b\"} 0.5\n"
			     "sglang:gen_throughput{model_name=\"a\"} 123.5\n"
			     "garbage line without value\n"
			     "sglang:num_queue_reqs{unterminated 9\n"
			     "sglang:num_queue_reqs{model_name=\"b\"} NaN\n";

int
main(void)
{
	struct qs_engine_metrics a, b, s;
	struct qs_gw_resp g, p;
	uint8_t buf[QS_QRA_LEN + QS_GW_EXT_LEN + QS_GW_CHUNK_MAX];
	uint32_t n;

	qs_engine_metrics_parse(vllm1, strlen(vllm1), &a);
	CHECK(a.ok && a.have_running && a.running == 3 && a.waiting == 7);
	CHECK(a.have_kv && fabs(a.kv_frac - 0.42) < 1e-9);
	CHECK(a.have_gen && a.gen_tokens == 1000);
	CHECK(a.have_ttft && a.n_ttft == 4);
	CHECK(fabs(qs_engine_ttft_p99(NULL, &a) - 0.1) < 1e-9);
	qs_engine_metrics_parse(vllm2, strlen(vllm2), &b);
	CHECK(b.running == 1 && b.have_waiting && b.waiting == 0);
	CHECK(fabs(b.kv_frac - 0.97) < 1e-9); /* the newer name */
	/* 100 new observations, all in (0.1, 1.0]: p99 is 1.0 */
	CHECK(fabs(qs_engine_ttft_p99(&a, &b) - 1.0) < 1e-9);
	/* nothing new: no p99 */
	CHECK(qs_engine_ttft_p99(&b, &b) < 0);
	qs_engine_metrics_parse(sglang, strlen(sglang), &s);
	CHECK(s.running == 6 && s.waiting == 5); /* summed over models */
	CHECK(fabs(s.kv_frac - 0.5) < 1e-9);	 /* the fullest decides */
	CHECK(fabs(s.gen_tps - 123.5) < 1e-9);
	CHECK(!s.have_ttft);
	qs_engine_metrics_parse("", 0, &s);
	CHECK(s.ok && !s.have_running && !s.have_kv);

	memset(&g, 0, sizeof(g));
	g.r.kind = QS_GW_K_BODY;
	g.r.backend_id = 7;
	g.r.request_id = 0x1122334455667788ull;
	g.r.tokens = 5;
	g.seq = 3;
	g.status = 200;
	g.data = (const uint8_t *)"data: {}\n\n";
	g.len = 10;
	n = qs_gw_resp_write(buf, &g);
	CHECK(n == QS_QRA_LEN + QS_GW_EXT_LEN + 10);
	CHECK(qs_gw_resp_parse(buf, n, &p) == QS_QRP_OK);
	CHECK(p.r.kind == QS_GW_K_BODY && p.r.backend_id == 7 && p.seq == 3 && p.status == 200 &&
	      p.len == 10 && !memcmp(p.data, "data: {}\n\n", 10) &&
	      p.r.request_id == g.r.request_id && p.r.tokens == 5);
	/* agent_wire.h's own parser refuses the new kind, as a peer without it would */
	{
		struct qs_qra_resp r;

		CHECK(qs_qra_parse(buf, n, &r) == QS_QRP_E_TYPE);
	}
	CHECK(qs_gw_resp_parse(buf, QS_QRA_LEN + 4, &p) == QS_QRP_E_SHORT);
	buf[QS_QRA_LEN + 7] = 0x80; /* unknown flag */
	CHECK(qs_gw_resp_parse(buf, n, &p) == QS_QRP_E_FIELD);
	buf[QS_QRA_LEN + 7] = 0;
	buf[3] = 9; /* unknown kind */
	CHECK(qs_gw_resp_parse(buf, n, &p) == QS_QRP_E_TYPE);
	buf[3] = QS_QRA_K_DONE;
	buf[0] = 0; /* magic */
	CHECK(qs_gw_resp_parse(buf, n, &p) == QS_QRP_E_MAGIC);
	if (fails)
		return 1;
	printf("gw-unit: ok\n");
	return 0;
}
