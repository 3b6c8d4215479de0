/*
 * model.c - the `model` executor (iteration times from a simulator profile, no
 * GPU) and the profile helpers: defaults, the INI reader (the simulator's own
 * loader when libqsteer-sim is built, an equivalent reader of the same keys until
 * then), the writer `--profile` uses, and the least-squares fit of the batch
 * model's four terms.
 *
 * The iteration-time formula is sim.h's batch model, term by term:
 *   fixed_us + prefill_us_per_token * prefill tokens + decode_us_per_seq * decode
 *   sequences + kv_us_per_token * KV tokens the decodes read.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "qsteer/agent.h"

uint64_t
qs_agent_model_iter_ns(const struct qs_sim_profile *p, uint64_t prefill_tokens,
		       uint64_t decode_seqs, uint64_t kv_tokens)
{
	double us = p->fixed_us + p->prefill_us_per_token * (double)prefill_tokens +
		    p->decode_us_per_seq * (double)decode_seqs +
		    p->kv_us_per_token * (double)kv_tokens;

	return us <= 0 ? 0 : (uint64_t)llround(us * 1000.0);
}

static int
model_run(void *ctx, const struct qs_agent_batch *b, uint64_t *ns, char *msg, size_t msglen)
{
	(void)msg;
	(void)msglen;
	*ns = qs_agent_model_iter_ns(ctx, b->prefill_tokens, b->decode_seqs, b->kv_tokens);
	return QS_OK;
}

static void
model_destroy(void *ctx)
{
	free(ctx);
}

int
qs_agent_exec_model(const struct qs_sim_profile *p, struct qs_agent_exec *e, char *msg,
		    size_t msglen)
{
	struct qs_sim_profile *c;

	memset(e, 0, sizeof(*e));
	if (p->model != QS_SIM_MODEL_BATCH) {
		snprintf(msg, msglen, "model executor: profile '%s' is not a batch-model profile",
			 p->name);
		return QS_E_VALUE;
	}
	c = malloc(sizeof(*c));
	if (!c) {
		snprintf(msg, msglen, "model executor: out of memory");
		return QS_E_NOMEM;
	}
	*c = *p;
	snprintf(e->name, sizeof(e->name), "model");
	e->ctx = c;
	e->run = model_run;
	e->destroy = model_destroy;
	e->simulated = true;
	return QS_OK;
}

void
qs_agent_exec_destroy(struct qs_agent_exec *e)
{
	if (e->destroy)
		e->destroy(e->ctx);
	e->destroy = NULL;
	e->ctx = NULL;
}

/*
 * A100-80GB serving a Llama-2-7B-shaped model in fp16, from first principles:
 * 14 GB of weights read per iteration (~9 ms at 1.5 TB/s), ~14 GFLOP per prefill
 * token at ~230 TFLOP/s effective, 0.5 MB of KV per token read at HBM speed.
 */
void
qs_agent_profile_default(struct qs_sim_profile *p)
{
#ifdef QSTEER_AGENT_HAVE_SIM
	qs_sim_profile_default(p); /* one default for the simulator and the agent */
	return;
#endif
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "a100-llama2-7b");
	p->model = QS_SIM_MODEL_BATCH;
	p->fixed_us = 9000;
	p->prefill_us_per_token = 60;
	p->decode_us_per_seq = 30;
	p->kv_us_per_token = 0.35;
	p->max_seqs = 256;
	p->max_tokens = 4096;
	p->kv_blocks = 7000;
	p->max_model_len = 8192;
	p->chunked_prefill = true;
}

#ifdef QSTEER_AGENT_HAVE_SIM
int
qs_agent_profile_load(const char *path, struct qs_sim_profile *p, char *msg, size_t msglen)
{
	return qs_sim_profile_load(path, p, msg, msglen);
}

int
qs_agent_profile_parse(const char *text, const char *label, struct qs_sim_profile *p,
		       char *msg, size_t msglen)
{
	return qs_sim_profile_parse(text, label, p, msg, msglen);
}
#else
struct parse_ctx {
	struct qs_sim_profile *p;
	const char *label;
	char *msg;
	size_t msglen;
	int rc;
};

static int
num(struct parse_ctx *c, const char *key, const char *v, double lo, double hi, double *out)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (end == v || *end != '\0' || errno || !(x >= lo && x <= hi)) {
		snprintf(c->msg, c->msglen, "%s: %s = '%s' is not a number in [%g, %g]", c->label,
			 key, v, lo, hi);
		c->rc = QS_E_VALUE;
		return 0;
	}
	*out = x;
	return 1;
}

static int
on_kv(void *user, const char *section, const char *key, const char *v)
{
	struct parse_ctx *c = user;
	struct qs_sim_profile *p = c->p;
	double x = 0;

	if (section[0] && strcmp(section, "profile")) {
		snprintf(c->msg, c->msglen, "%s: unknown section [%s]", c->label, section);
		c->rc = QS_E_VALUE;
		return 0;
	}
#define D(k, lo, hi)                                                        \
	if (!strcmp(key, #k)) {                                             \
		if (!num(c, key, v, lo, hi, &x))                            \
			return 0;                                           \
		p->k = x;                                                   \
		return 1;                                                   \
	}
#define U(k, lo, hi)                                                        \
	if (!strcmp(key, #k)) {                                             \
		if (!num(c, key, v, lo, hi, &x) || x != floor(x)) {         \
			snprintf(c->msg, c->msglen, "%s: %s = '%s' is not an integer in [%g, %g]", \
				 c->label, key, v, (double)(lo), (double)(hi)); \
			c->rc = QS_E_VALUE;                                 \
			return 0;                                           \
		}                                                           \
		p->k = (uint32_t)x;                                         \
		return 1;                                                   \
	}
	D(fixed_us, 0, 1e9)
	D(prefill_us_per_token, 0, 1e9)
	D(decode_us_per_seq, 0, 1e9)
	D(kv_us_per_token, 0, 1e9)
	D(tokens_per_s, 0, 1e12)
	D(prefill_weight, 0, 1e6)
	U(max_seqs, 1, 1 << 20)
	U(max_tokens, 1, 1 << 24)
	U(kv_blocks, 1, 1 << 28)
	U(max_model_len, 0, 1 << 24)
	U(prefix_cache, 0, 1 << 24)
	U(concurrency, 0, 1 << 20)
#undef D
#undef U
	if (!strcmp(key, "name")) {
		snprintf(p->name, sizeof(p->name), "%s", v);
		return 1;
	}
	if (!strcmp(key, "model")) {
		if (!strcmp(v, "batch"))
			p->model = QS_SIM_MODEL_BATCH;
		else if (!strcmp(v, "tokrate"))
			p->model = QS_SIM_MODEL_TOKRATE;
		else {
			snprintf(c->msg, c->msglen, "%s: model = '%s' (batch or tokrate)", c->label, v);
			c->rc = QS_E_VALUE;
			return 0;
		}
		return 1;
	}
	if (!strcmp(key, "chunked_prefill")) {
		if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
			p->chunked_prefill = true;
		else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
			p->chunked_prefill = false;
		else {
			snprintf(c->msg, c->msglen, "%s: chunked_prefill = '%s' (true or false)",
				 c->label, v);
			c->rc = QS_E_VALUE;
			return 0;
		}
		return 1;
	}
	snprintf(c->msg, c->msglen, "%s: unknown key '%s'", c->label, key);
	c->rc = QS_E_VALUE;
	return 0;
}

int
qs_agent_profile_parse(const char *text, const char *label, struct qs_sim_profile *p,
		       char *msg, size_t msglen)
{
	struct qs_sim_profile tmp;
	struct parse_ctx c = { &tmp, label, msg, msglen, QS_OK };
	int line;

	qs_agent_profile_default(&tmp);
	line = ini_parse_string(text, on_kv, &c);
	if (c.rc != QS_OK)
		return c.rc;
	if (line != 0) {
		snprintf(msg, msglen, "%s:%d: not INI", label, line);
		return QS_E_VALUE;
	}
	*p = tmp;
	return QS_OK;
}

int
qs_agent_profile_load(const char *path, struct qs_sim_profile *p, char *msg, size_t msglen)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;
	int rc;

	if (!f) {
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return QS_E_IO;
	}
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || n > (1 << 20) || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		snprintf(msg, msglen, "%s: unreadable or larger than 1 MiB", path);
		return QS_E_IO;
	}
	buf = malloc((size_t)n + 1);
	if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		fclose(f);
		snprintf(msg, msglen, "%s: read failed", path);
		return QS_E_IO;
	}
	fclose(f);
	buf[n] = '\0';
	rc = qs_agent_profile_parse(buf, path, p, msg, msglen);
	free(buf);
	return rc;
}
#endif

int
qs_agent_profile_write(FILE *f, const struct qs_sim_profile *p)
{
	int n = fprintf(f,
		"# qsteer simulator profile (batch model), sim/profiles format\n"
		"[profile]\n"
		"name = %s\n"
		"model = batch\n"
		"fixed_us = %.3f\n"
		"prefill_us_per_token = %.6f\n"
		"decode_us_per_seq = %.6f\n"
		"kv_us_per_token = %.6f\n"
		"max_seqs = %u\n"
		"max_tokens = %u\n"
		"kv_blocks = %u\n"
		"max_model_len = %u\n"
		"chunked_prefill = %s\n",
		p->name, p->fixed_us, p->prefill_us_per_token, p->decode_us_per_seq,
		p->kv_us_per_token, p->max_seqs, p->max_tokens, p->kv_blocks, p->max_model_len,
		p->chunked_prefill ? "true" : "false");

	return n < 0 ? QS_E_IO : QS_OK;
}

/* Least squares by the normal equations (4 unknowns), Gaussian elimination with
 * partial pivoting. Terms the grid never varied make the system singular: refused. */
int
qs_agent_profile_fit(const struct qs_agent_iter_sample *s, uint32_t n, struct qs_sim_profile *p,
		     double *rms_us, char *msg, size_t msglen)
{
	double A[4][5] = { { 0 } }, beta[4], se = 0;
	uint32_t i;
	int r, c, k;

	if (n < 4) {
		snprintf(msg, msglen, "profile fit: %u samples, need at least 4", n);
		return QS_E_ARG;
	}
	for (i = 0; i < n; i++) {
		double x[4] = { 1.0, s[i].prefill_tokens, s[i].decode_seqs, s[i].kv_tokens };

		for (r = 0; r < 4; r++) {
			for (c = 0; c < 4; c++)
				A[r][c] += x[r] * x[c];
			A[r][4] += x[r] * s[i].us;
		}
	}
	for (c = 0; c < 4; c++) {
		int piv = c;

		for (r = c + 1; r < 4; r++)
			if (fabs(A[r][c]) > fabs(A[piv][c]))
				piv = r;
		if (fabs(A[piv][c]) < 1e-9 * (1.0 + fabs(A[0][0]))) {
			snprintf(msg, msglen, "profile fit: term %d never varied (singular system)", c);
			return QS_E_VALUE;
		}
		for (k = 0; k < 5; k++) {
			double t = A[c][k];

			A[c][k] = A[piv][k];
			A[piv][k] = t;
		}
		for (r = 0; r < 4; r++) {
			double f;

			if (r == c)
				continue;
			f = A[r][c] / A[c][c];
			for (k = c; k < 5; k++)
				A[r][k] -= f * A[c][k];
		}
	}
	for (r = 0; r < 4; r++)
		beta[r] = A[r][4] / A[r][r];
	p->model = QS_SIM_MODEL_BATCH;
	/* Negative terms are noise around zero; a profile with them would be refused. */
	p->fixed_us = fmax(0.0, beta[0]);
	p->prefill_us_per_token = fmax(0.0, beta[1]);
	p->decode_us_per_seq = fmax(0.0, beta[2]);
	p->kv_us_per_token = fmax(0.0, beta[3]);
	for (i = 0; i < n; i++) {
		double e = p->fixed_us + p->prefill_us_per_token * s[i].prefill_tokens +
			   p->decode_us_per_seq * s[i].decode_seqs +
			   p->kv_us_per_token * s[i].kv_tokens - s[i].us;

		se += e * e;
	}
	if (rms_us)
		*rms_us = sqrt(se / n);
	return QS_OK;
}
