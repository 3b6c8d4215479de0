/*
 * model.c - the `model` executor (iteration times from a simulator profile, no
 * GPU) and the profile helpers: defaults, the INI reader (the simulator's own
 * loader when libqsteer-sim is built, an equivalent reader of the same keys until
 * then), the writer `--profile` uses, and the least-squares fit of the batch
 * model's four terms.
 *
 * The iteration time is profile.h's batch model (qs_sim_profile_iter_us, the
 * simulator's backends' formula too):
 *   fixed_us + prefill_us_per_token * prefill tokens + decode_us_per_seq * decode
 *   sequences + kv_us_per_token * KV tokens the decodes read, plus the draft steps
 *   and verification when the batch speculates.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "qsteer/agent.h"
#include "qsteer/rng.h"

uint64_t
qs_agent_model_iter_ns(const struct qs_sim_profile *p, uint64_t prefill_tokens,
		       uint64_t decode_seqs, uint64_t kv_tokens)
{
	return qs_agent_model_spec_ns(p, prefill_tokens, decode_seqs, kv_tokens, 0, 0);
}

uint64_t
qs_agent_model_spec_ns(const struct qs_sim_profile *p, uint64_t prefill_tokens,
		       uint64_t decode_seqs, uint64_t kv_tokens, uint64_t draft_tokens,
		       uint32_t spec_depth)
{
	double us = qs_sim_profile_iter_us(p, (double)prefill_tokens, (double)decode_seqs,
					   (double)kv_tokens, (double)draft_tokens, spec_depth);

	return us <= 0 ? 0 : (uint64_t)llround(us * 1000.0);
}

uint32_t
qs_agent_model_accepted(uint64_t req_id, uint32_t position, uint32_t k, uint32_t pct)
{
	/* Leviathan et al.'s i.i.d. model: each draft token is accepted with
	 * probability pct/100 until the first rejection; one splitmix64 draw per token,
	 * its top 32 bits against pct/100 (exact to 2^-32). */
	uint64_t h = req_id * 0x9e3779b97f4a7c15ull ^ (uint64_t)position << 32;
	uint32_t n = 0;

	pct = QS_RC_MIN(pct, 99u);
	while (n < k) {
		h = qs_mix64(h + 0x9e3779b97f4a7c15ull);
		if ((h >> 32) * 100u >= (uint64_t)pct << 32)
			break;
		n++;
	}
	return n;
}

static int
model_run(void *ctx, const struct qs_agent_batch *b, uint64_t *ns, char *msg, size_t msglen)
{
	const struct qs_sim_profile *p = ctx;
	uint32_t def = (uint32_t)llround(p->spec_accept * 100.0);

	(void)msg;
	(void)msglen;
	*ns = qs_agent_model_spec_ns(p, b->prefill_tokens, b->decode_seqs, b->kv_tokens,
				     b->draft_tokens, b->spec_depth);
	for (uint32_t i = 0; i < b->n && b->draft_tokens; i++) {
		const struct qs_agent_batch_seq *s = &b->seq[i];

		b->accepted[i] = s->draft
				     ? qs_agent_model_accepted(s->req_id, s->ctx_start, s->draft,
							       s->accept_pct ? s->accept_pct : def)
				     : 0;
	}
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
	e->spec_max_depth = p->spec_max_depth;
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
 * Profiles are the simulator's (include/qsteer/sim.h): one format, one loader and
 * one default for the simulator and the agent, so a profile measured here with
 * --profile loads there unchanged.
 */
void
qs_agent_profile_default(struct qs_sim_profile *p)
{
	qs_sim_profile_default(p);
}

int
qs_agent_profile_load(const char *path, struct qs_sim_profile *p, char *msg, size_t msglen)
{
	return qs_sim_profile_load(path, p, msg, msglen);
}

int
qs_agent_profile_parse(const char *text, const char *label, struct qs_sim_profile *p, char *msg,
		       size_t msglen)
{
	return qs_sim_profile_parse(text, label, p, msg, msglen);
}

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
			p->kv_us_per_token, p->max_seqs, p->max_tokens, p->kv_blocks,
			p->max_model_len, p->chunked_prefill ? "true" : "false");

	if (n >= 0 && p->spec_max_depth)
		n = fprintf(f,
			    "spec_max_depth = %u\n"
			    "draft_fixed_us = %.3f\n"
			    "draft_cost_ratio = %.6f\n"
			    "spec_accept = %.2f\n",
			    p->spec_max_depth, p->draft_fixed_us, p->draft_cost_ratio,
			    p->spec_accept);
	return n < 0 ? QS_E_IO : QS_OK;
}

/* Least squares by the normal equations (4 unknowns), Gaussian elimination with
 * partial pivoting. Terms the grid never varied make the system singular: refused. */
int
qs_agent_profile_fit(const struct qs_agent_iter_sample *s, uint32_t n, struct qs_sim_profile *p,
		     double *rms_us, char *msg, size_t msglen)
{
	double A[4][5] = {{0}}, beta[4], se = 0;
	uint32_t i;
	int r, c, k;

	if (n < 4) {
		snprintf(msg, msglen, "profile fit: %u samples, need at least 4", n);
		return QS_E_ARG;
	}
	for (i = 0; i < n; i++) {
		double x[4] = {1.0, s[i].prefill_tokens, s[i].decode_seqs, s[i].kv_tokens};

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
			snprintf(msg, msglen, "profile fit: term %d never varied (singular system)",
				 c);
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
