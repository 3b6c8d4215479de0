/*
 * profile.c - libqsteer-profile (include/qsteer/profile.h): backend performance
 * profiles: defaults, INI loading (sim/profiles/NAME.ini, section [profile]) and the
 * capacity estimate that turns a scenario's `load` into a request rate.
 *
 * The key table here is shared with scenario.c, whose [backend.*] sections may
 * override any profile key after naming the profile (profile_int.h).
 */
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile_int.h"

/* msg gets the message, the status is returned; every caller here has msg and msglen
 * in scope. A macro, not status.h's qs_fail: this library links nothing but libc
 * and inih, so that the agent and the simulator both take it as it is. */
#define FAIL(status, ...) (snprintf(msg, msglen, __VA_ARGS__), (status))

void
qs_sim_profile_default(struct qs_sim_profile *p)
{
	/* sim/profiles/a100-80gb-llama2-7b.ini explains these numbers. */
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "a100-80gb-llama2-7b");
	p->model = QS_SIM_MODEL_BATCH;
	p->fixed_us = 11018;
	p->prefill_us_per_token = 86.4;
	p->decode_us_per_seq = 100.4;
	p->kv_us_per_token = 0.257;
	p->max_seqs = 256;
	p->max_tokens = 8192;
	p->kv_blocks = 7366;
	p->max_model_len = 8192;
	p->tokens_per_s = 0;
	p->concurrency = 0;
	p->prefill_weight = 0;
}

double
qs_sim_profile_capacity_rps(const struct qs_sim_profile *p, double prompt, double gen)
{
	double us, batch, ctx, pb;

	if (prompt < 1)
		prompt = 1;
	if (gen < 1)
		gen = 1;
	if (p->model == QS_SIM_MODEL_TOKRATE)
		return p->tokens_per_s / (p->prefill_weight * prompt + gen);
	/*
	 * Saturated steady state: as many sequences as the KV cache holds at the mean
	 * length (90% full) up to max_seqs decode together; prefills batch up to the
	 * token budget. One request then costs its prefill tokens, its share of
	 * prefill and decode fixed costs, and gen decode steps at the mean context.
	 */
	ctx = prompt + gen / 2;
	batch = floor(0.9 * p->kv_blocks * QS_SIM_BLOCK_TOKENS / (prompt + gen));
	batch = fmax(1.0, fmin(batch, (double)p->max_seqs));
	pb = fmax(1.0, floor((double)p->max_tokens / prompt));
	us = p->fixed_us / pb + p->prefill_us_per_token * prompt +
	     gen * (p->fixed_us / batch + p->decode_us_per_seq + p->kv_us_per_token * ctx);
	return 1e6 / us;
}

/* ---- key table ----------------------------------------------------------------- */

#define F(name, type)                                                                              \
	{                                                                                          \
#name, type, offsetof(struct qs_sim_profile, name)                                 \
	}
static const struct qs_sim_key profile_keys[] = {
    F(name, QS_KEY_STR),
    F(model, QS_KEY_MODEL),
    F(fixed_us, QS_KEY_DOUBLE),
    F(prefill_us_per_token, QS_KEY_DOUBLE),
    F(decode_us_per_seq, QS_KEY_DOUBLE),
    F(kv_us_per_token, QS_KEY_DOUBLE),
    F(max_seqs, QS_KEY_U32),
    F(max_tokens, QS_KEY_U32),
    F(kv_blocks, QS_KEY_U32),
    F(max_model_len, QS_KEY_U32),
    F(chunked_prefill, QS_KEY_BOOL),
    F(prefix_cache, QS_KEY_U32),
    F(tokens_per_s, QS_KEY_DOUBLE),
    F(concurrency, QS_KEY_U32),
    F(prefill_weight, QS_KEY_DOUBLE),
    F(spec_max_depth, QS_KEY_U32),
    F(spec_depth, QS_KEY_U32),
    F(draft_fixed_us, QS_KEY_DOUBLE),
    F(draft_cost_ratio, QS_KEY_DOUBLE),
    F(spec_accept, QS_KEY_DOUBLE),
    {NULL, 0, 0},
};
#undef F

int
qs_sim_parse_double(const char *v, double *out)
{
	char *end;
	double d;

	errno = 0;
	d = strtod(v, &end);
	if (end == v || *end || errno || !isfinite(d))
		return -1;
	*out = d;
	return 0;
}

int
qs_sim_parse_u64(const char *v, uint64_t *out)
{
	char *end;
	unsigned long long x;

	if (*v < '0' || *v > '9')
		return -1;
	errno = 0;
	x = strtoull(v, &end, 10);
	if (end == v || *end || errno)
		return -1;
	*out = x;
	return 0;
}

int
qs_sim_parse_bool(const char *v, bool *out)
{
	if (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "1") || !strcmp(v, "on"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "0") || !strcmp(v, "off"))
		*out = false;
	else
		return -1;
	return 0;
}

/* 1: set, 0: no such key, -1: bad value (err filled). */
int
qs_sim_set_key(const struct qs_sim_key *keys, void *base, const char *name, const char *value,
	       char *err, size_t errlen)
{
	const struct qs_sim_key *k;
	uint64_t u;
	double d;
	bool b;

	for (k = keys; k->name; k++) {
		char *f = (char *)base + k->off;

		if (strcmp(k->name, name))
			continue;
		switch (k->type) {
		case QS_KEY_DOUBLE:
			if (qs_sim_parse_double(value, &d) || d < 0)
				goto bad;
			memcpy(f, &d, sizeof(d));
			return 1;
		case QS_KEY_U32:
			if (qs_sim_parse_u64(value, &u) || u > UINT32_MAX)
				goto bad;
			*(uint32_t *)(void *)f = (uint32_t)u;
			return 1;
		case QS_KEY_BOOL:
			if (qs_sim_parse_bool(value, &b))
				goto bad;
			*(bool *)(void *)f = b;
			return 1;
		case QS_KEY_MODEL:
			if (!strcmp(value, "batch"))
				*(enum qs_sim_model *)(void *)f = QS_SIM_MODEL_BATCH;
			else if (!strcmp(value, "tokrate"))
				*(enum qs_sim_model *)(void *)f = QS_SIM_MODEL_TOKRATE;
			else
				goto bad;
			return 1;
		case QS_KEY_STR:
			if (strlen(value) >= QS_SIM_NAME_LEN)
				goto bad;
			snprintf(f, QS_SIM_NAME_LEN, "%s", value);
			return 1;
		}
	}
	return 0;
bad:
	snprintf(err, errlen, "bad value '%.64s' for key '%s'", value, name);
	return -1;
}

int
qs_sim_profile_key(struct qs_sim_profile *p, const char *name, const char *value, char *err,
		   size_t errlen)
{
	return qs_sim_set_key(profile_keys, p, name, value, err, errlen);
}

/* ---- profile files ------------------------------------------------------------------ */

struct prof_ctx {
	struct qs_sim_profile *p;
	char err[256];
	bool failed;
};

static int
prof_handler(void *user, const char *section, const char *name, const char *value)
{
	struct prof_ctx *c = user;
	int r;

	if (c->failed)
		return 1; /* report the first error only */
	if (strcmp(section, "profile")) {
		snprintf(c->err, sizeof(c->err), "unknown section [%s]", section);
		c->failed = true;
		return 0;
	}
	if (!strcmp(name, "source") || !strcmp(name, "description"))
		return 1; /* citations live in the file for people */
	r = qs_sim_profile_key(c->p, name, value, c->err, sizeof(c->err));
	if (r == 0) {
		snprintf(c->err, sizeof(c->err), "unknown key '%s' in [%s]", name, section);
		c->failed = true;
		return 0;
	}
	if (r < 0) {
		c->failed = true;
		return 0;
	}
	return 1;
}

int
qs_sim_profile_parse(const char *text, const char *label, struct qs_sim_profile *p, char *msg,
		     size_t msglen)
{
	struct prof_ctx c = {.p = p};
	int line;

	qs_sim_profile_default(p);
	p->name[0] = 0;
	line = ini_parse_string(text, prof_handler, &c);
	if (line != 0)
		return FAIL(QS_E_VALUE, "%s:%d: %s", label, line,
			    c.failed ? c.err : "syntax error");
	if (!p->name[0])
		return FAIL(QS_E_VALUE, "%s: profile has no name", label);
	return qs_sim_profile_check_spec(p, label, msg, msglen);
}

int
qs_sim_profile_check_spec(const struct qs_sim_profile *p, const char *label, char *msg,
			  size_t msglen)
{
	if (p->spec_max_depth > QS_SPEC_DEPTH_MAX)
		return FAIL(QS_E_VALUE, "%s: spec_max_depth %u > %u", label, p->spec_max_depth,
			    QS_SPEC_DEPTH_MAX);
	if (!(p->draft_fixed_us >= 0 && p->draft_fixed_us <= 1e6))
		return FAIL(QS_E_VALUE, "%s: draft_fixed_us %g not in [0, 1e6]", label,
			    p->draft_fixed_us);
	if (!(p->draft_cost_ratio >= 0 && p->draft_cost_ratio <= 1))
		return FAIL(QS_E_VALUE, "%s: draft_cost_ratio %g not in [0, 1]", label,
			    p->draft_cost_ratio);
	if (!(p->spec_accept >= 0 && p->spec_accept <= 0.99))
		return FAIL(QS_E_VALUE, "%s: spec_accept %g not in [0, 0.99]", label,
			    p->spec_accept);
	if (p->spec_depth > p->spec_max_depth)
		return FAIL(QS_E_VALUE, "%s: spec_depth %u > spec_max_depth %u", label,
			    p->spec_depth, p->spec_max_depth);
	if (p->spec_max_depth > 0 && p->model != QS_SIM_MODEL_BATCH)
		return FAIL(QS_E_VALUE, "%s: spec_max_depth needs the batch model", label);
	return QS_OK;
}

double
qs_sim_profile_iter_us(const struct qs_sim_profile *p, double prefill_tokens, double decode_seqs,
		       double kv_tokens, double draft_tokens, uint32_t spec_depth)
{
	double us = p->fixed_us + p->prefill_us_per_token * prefill_tokens +
		    p->decode_us_per_seq * decode_seqs + p->kv_us_per_token * kv_tokens;

	/* The target verifies the drafts as extra positions of the decodes (compute,
	 * like prefill tokens; the context is read once); the draft model ran
	 * spec_depth steps over the same sequences before it, each a small decode. */
	if (spec_depth)
		us += p->prefill_us_per_token * draft_tokens +
		      (double)spec_depth *
			  (p->draft_fixed_us +
			   p->draft_cost_ratio * (p->decode_us_per_seq * decode_seqs +
						  p->kv_us_per_token * kv_tokens));
	return us;
}

double
qs_spec_expected_tokens(double accept, uint32_t k)
{
	double t = 1, a = 1;

	for (uint32_t i = 0; i < k; i++) {
		a *= accept;
		t += a;
	}
	return t;
}

int
qs_sim_read_file(const char *path, char **out, char *msg, size_t msglen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	*out = NULL;
	if (!f)
		return FAIL(QS_E_IO, "%s: %s", path, strerror(errno));
	if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		fclose(f);
		return FAIL(QS_E_IO, "%s: cannot size", path);
	}
	if (n > (1 << 20)) {
		fclose(f);
		return FAIL(QS_E_SIZE, "%s: larger than 1 MiB", path);
	}
	buf = malloc((size_t)n + 1);
	if (!buf) {
		fclose(f);
		return FAIL(QS_E_NOMEM, "out of memory");
	}
	if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fclose(f);
		free(buf);
		return FAIL(QS_E_IO, "%s: read error", path);
	}
	fclose(f);
	buf[n] = 0;
	if (strlen(buf) != (size_t)n) {
		free(buf);
		return FAIL(QS_E_VALUE, "%s: contains a NUL byte", path);
	}
	*out = buf;
	return QS_OK;
}

int
qs_sim_profile_load(const char *path, struct qs_sim_profile *p, char *msg, size_t msglen)
{
	char *text;
	int rc = qs_sim_read_file(path, &text, msg, msglen);

	if (rc != QS_OK)
		return rc;
	rc = qs_sim_profile_parse(text, path, p, msg, msglen);
	free(text);
	return rc;
}
