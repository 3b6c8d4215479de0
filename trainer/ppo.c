/*
 * ppo.c - the policy-gradient core (ppo.h) for both action heads: rollout buffer with
 * late reward credit, GAE, acting, and the PPO / REINFORCE updates of the policy and
 * value networks.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ppo.h"
#include "qsteer/jobs.h"
#include "quantize.h"
#include "util.h"

#define MAX_FEAT 64

/*
 * What differs between the action heads, in one place. The first group is the heads'
 * design; the second is arithmetic in which the router's learner and the batching
 * learner differed before they shared this core. Those choices change no
 * expectation, only roundings and the figures the logs print, and each head keeps
 * its own so that a fixed seed trains the same bytes as before (and the shipped
 * recipes rebuild their policies).
 */
struct head {
	uint32_t max_rows; /* rows per decision */
	int value_summary; /* the value net reads qs_ppo_summary (else the row itself) */
	uint32_t shards;   /* gradient shards per minibatch */
	uint64_t init_stream, shuffle_stream; /* qs_rng streams of the seed */
	float pi_gain, vf_gain;		      /* output-layer gains at initialization */
	/* arithmetic */
	int x_div;	  /* inputs x / 127.0f (else x * (1.0f / 127)) */
	int sums_f64;	  /* loss terms summed in double (else float, shard by shard) */
	int clip_active;  /* clip_frac counts decisions whose clipped term won the min
			   * (else those whose ratio left [1 - clip, 1 + clip]) */
	int adv_f64;	  /* advantages divided by the deviation in double */
	int perm_fresh;	  /* each epoch shuffles 0..n-1 (else the last epoch's order) */
	int stats_divide; /* update stats: sum / minibatches (else sum * (1 / minibatches)) */
};

static const struct head scorer = {
    .max_rows = QS_MAX_CANDIDATES,
    .value_summary = 1,
    .shards = QS_PPO_SHARDS,
    .init_stream = 0x1417,
    .shuffle_stream = 0x5eed,
    /* A small output layer starts the policy near uniform over candidates. */
    .pi_gain = 0.1f,
    .vf_gain = 0.1f,
};

static const struct head classifier = {
    .max_rows = 1,
    .value_summary = 0,
    .shards = 1,
    .init_stream = 1,
    .shuffle_stream = 2,
    /* A smaller output gain starts the policy near uniform over the actions. */
    .pi_gain = 0.01f,
    .vf_gain = 1.0f,
    .x_div = 1,
    .sums_f64 = 1,
    .clip_active = 1,
    .adv_f64 = 1,
    .perm_fresh = 1,
    .stats_divide = 1,
};

static const struct head *
head_of(const struct qs_ppo_cfg *c)
{
	return c->head == QS_PPO_HEAD_CLASSIFIER ? &classifier : &scorer;
}

static uint32_t
outputs(const struct qs_ppo_cfg *c)
{
	return c->head == QS_PPO_HEAD_CLASSIFIER ? c->n_actions : 1;
}

/* The float model sees x / 127 (the export folds 1/127 into layer 1's input
 * scales), rounded as the head does (struct head, x_div). */
static void
rows_to_float(const struct head *h, const uint8_t *rows, size_t n, float *x)
{
	if (h->x_div)
		for (size_t i = 0; i < n; i++)
			x[i] = (float)rows[i] / 127.0f;
	else
		for (size_t i = 0; i < n; i++)
			x[i] = (float)rows[i] * (1.0f / 127.0f);
}

void
qs_ppo_rows_in(const struct qs_ppo_agent *ag, const uint8_t *rows, size_t n, float *x)
{
	rows_to_float(head_of(&ag->cfg), rows, n, x);
}

static const char *const algo_names[QS_ALGO_COUNT] = {"ppo", "reinforce", "a2c", "dqn"};

const char *
qs_algo_name(enum qs_algo a)
{
	return (unsigned)a < QS_ALGO_COUNT ? algo_names[a] : "?";
}

int
qs_algo_parse(const char *s, enum qs_algo *out)
{
	for (unsigned i = 0; i < QS_ALGO_COUNT; i++)
		if (s && !strcmp(s, algo_names[i])) {
			*out = (enum qs_algo)i;
			return QS_OK;
		}
	return QS_E_VALUE;
}

void
qs_ppo_defaults(struct qs_ppo_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->algo = QS_ALGO_PPO;
	c->n_feat = 16;
	c->h1 = 32;
	c->h2 = 16;
	c->vh = 32;
	c->gamma = 0.99f;
	c->lambda = 0.95f;
	c->clip = 0.2f;
	c->vf_coef = 0.5f;
	c->ent_coef = 0.01f;
	c->epochs = 2;
	c->minibatch = 512;
	c->norm_adv = 1;
	qs_adam_defaults(&c->adam_pi);
	qs_adam_defaults(&c->adam_vf);
	c->adam_vf.lr = 1e-3f;
}

void
qs_ppo_classifier_defaults(struct qs_ppo_cfg *c, uint32_t n_feat, uint32_t n_actions)
{
	qs_ppo_defaults(c);
	c->head = QS_PPO_HEAD_CLASSIFIER;
	c->n_actions = n_actions;
	c->n_feat = n_feat;
	c->h2 = 32;
	c->vh = 64;
	/* An iteration is tens of ms and a request settles seconds after the iteration
	 * that admitted it: the horizon has to span a few hundred iterations. */
	c->gamma = 0.995f;
	c->epochs = 4;
	c->minibatch = 1024;
	c->adam_pi.lr = 1e-3f;
}

/* ---- buffer ---------------------------------------------------------------------- */

static int
buf_init(struct qs_ppo_buf *b, uint32_t n_env, uint32_t cap, uint32_t cap_rows, uint32_t n_feat,
	 uint32_t n_out, char *msg, size_t msglen)
{
	memset(b, 0, sizeof(*b));
	if (!n_env || n_env > 65535 || !cap || !cap_rows || !n_feat || n_feat > MAX_FEAT ||
	    !n_out || n_out > QS_PPO_MAX_LOGITS)
		return qs_fail(msg, msglen, QS_E_ARG,
			       "rollout buffer: %u envs, %u decisions, %u rows, %u features, "
			       "%u outputs",
			       n_env, cap, cap_rows, n_feat, n_out);
	b->n_feat = n_feat;
	b->n_env = n_env;
	b->n_out = n_out;
	b->cap = cap;
	b->cap_rows = cap_rows;
	b->rows = malloc((size_t)cap_rows * n_feat);
	b->row_off = calloc((size_t)cap + 1, sizeof(uint32_t));
	b->mask = malloc((size_t)cap * sizeof(uint64_t));
	b->action = malloc((size_t)cap * sizeof(uint16_t));
	b->env = malloc((size_t)cap * sizeof(uint16_t));
	b->done = malloc(cap);
	b->logp = malloc((size_t)cap * sizeof(float));
	b->value = malloc((size_t)cap * sizeof(float));
	b->reward = malloc((size_t)cap * sizeof(float));
	b->adv = malloc((size_t)cap * sizeof(float));
	b->ret = malloc((size_t)cap * sizeof(float));
	b->boot = calloc(n_env, sizeof(float));
	b->scratch = calloc(2 * (size_t)n_env, sizeof(float));
	if (!b->rows || !b->row_off || !b->mask || !b->action || !b->env || !b->done || !b->logp ||
	    !b->value || !b->reward || !b->adv || !b->ret || !b->boot || !b->scratch) {
		qs_ppo_buf_free(b);
		return qs_fail(msg, msglen, QS_E_NOMEM, "rollout buffer: %u decisions", cap);
	}
	return QS_OK;
}

int
qs_ppo_buf_init(struct qs_ppo_buf *b, uint32_t n_env, uint32_t cap, uint32_t cap_rows,
		uint32_t n_feat, char *msg, size_t msglen)
{
	return buf_init(b, n_env, cap, cap_rows, n_feat, 1, msg, msglen);
}

int
qs_ppo_buf_init_head(struct qs_ppo_buf *b, const struct qs_ppo_cfg *c, uint32_t n_env, uint32_t cap,
		     uint32_t cap_rows, char *msg, size_t msglen)
{
	return buf_init(b, n_env, cap, cap_rows, c->n_feat, outputs(c), msg, msglen);
}

void
qs_ppo_buf_free(struct qs_ppo_buf *b)
{
	if (!b)
		return;
	free(b->rows);
	free(b->row_off);
	free(b->mask);
	free(b->action);
	free(b->env);
	free(b->done);
	free(b->logp);
	free(b->value);
	free(b->reward);
	free(b->adv);
	free(b->ret);
	free(b->boot);
	free(b->scratch);
	memset(b, 0, sizeof(*b));
}

void
qs_ppo_buf_clear(struct qs_ppo_buf *b)
{
	b->n = 0;
	b->n_rows = 0;
	b->row_off[0] = 0;
	memset(b->boot, 0, b->n_env * sizeof(float));
}

int
qs_ppo_buf_push(struct qs_ppo_buf *b, uint32_t env, const uint8_t *rows, uint32_t n_rows,
		uint64_t mask, uint32_t action, float logp, float value, uint32_t *index)
{
	uint32_t i = b->n, nl = n_rows * b->n_out;

	if (env >= b->n_env || !n_rows || n_rows > QS_MAX_CANDIDATES || nl > QS_PPO_MAX_LOGITS ||
	    action >= nl || !(mask >> action & 1))
		return QS_E_ARG;
	if (i >= b->cap || b->n_rows + n_rows > b->cap_rows)
		return QS_E_SIZE;
	memcpy(b->rows + (size_t)b->n_rows * b->n_feat, rows, (size_t)n_rows * b->n_feat);
	b->n_rows += n_rows;
	b->row_off[i + 1] = b->n_rows;
	if (nl < 64)
		mask &= (1ull << nl) - 1;
	b->mask[i] = mask;
	b->action[i] = (uint16_t)action;
	b->env[i] = (uint16_t)env;
	b->done[i] = 0;
	b->logp[i] = logp;
	b->value[i] = value;
	b->reward[i] = 0;
	b->n = i + 1;
	if (index)
		*index = i;
	return QS_OK;
}

int
qs_ppo_buf_append(struct qs_ppo_buf *d, const struct qs_ppo_buf *s)
{
	uint32_t o = d->n, r = d->n_rows;

	if (s->n_feat != d->n_feat || s->n_out != d->n_out || s->n_env > d->n_env)
		return QS_E_SHAPE;
	if (s->n > d->cap - d->n || s->n_rows > d->cap_rows - d->n_rows)
		return QS_E_SIZE;
	memcpy(d->rows + (size_t)r * d->n_feat, s->rows, (size_t)s->n_rows * s->n_feat);
	for (uint32_t i = 0; i < s->n; i++)
		d->row_off[o + i + 1] = r + s->row_off[i + 1];
	memcpy(d->mask + o, s->mask, s->n * sizeof(*s->mask));
	memcpy(d->action + o, s->action, s->n * sizeof(*s->action));
	memcpy(d->env + o, s->env, s->n * sizeof(*s->env));
	memcpy(d->done + o, s->done, s->n);
	memcpy(d->logp + o, s->logp, s->n * sizeof(float));
	memcpy(d->value + o, s->value, s->n * sizeof(float));
	memcpy(d->reward + o, s->reward, s->n * sizeof(float));
	d->n += s->n;
	d->n_rows += s->n_rows;
	return QS_OK;
}

int
qs_ppo_buf_credit(struct qs_ppo_buf *b, uint32_t index, float reward)
{
	if (index >= b->n)
		return QS_E_ARG;
	b->reward[index] += reward;
	return QS_OK;
}

int
qs_ppo_buf_end_episode(struct qs_ppo_buf *b, uint32_t index)
{
	if (index >= b->n)
		return QS_E_ARG;
	b->done[index] = 1;
	return QS_OK;
}

void
qs_ppo_buf_bootstrap(struct qs_ppo_buf *b, uint32_t env, float value)
{
	if (env < b->n_env)
		b->boot[env] = value;
}

void
qs_ppo_buf_finish(struct qs_ppo_buf *b, float gamma, float lambda)
{
	/* Walk backwards once; per env, remember the value and advantage of the decision
	 * that followed, which is the next one of that env in buffer order. */
	float *next_value = b->scratch, *next_adv = b->scratch + b->n_env;

	for (uint32_t e = 0; e < b->n_env; e++) {
		next_value[e] = b->boot[e];
		next_adv[e] = 0;
	}
	for (uint32_t i = b->n; i-- > 0;) {
		uint32_t e = b->env[i];
		float nd = b->done[i] ? 0.0f : 1.0f;
		float delta = b->reward[i] + gamma * next_value[e] * nd - b->value[i];
		float a = delta + gamma * lambda * nd * next_adv[e];

		b->adv[i] = a;
		b->ret[i] = a + b->value[i];
		next_value[e] = b->value[i];
		next_adv[e] = a;
	}
}

/* ---- acting ---------------------------------------------------------------------- */

void
qs_ppo_summary(const uint8_t *rows, uint32_t n_cand, uint64_t mask, uint32_t n_feat, float *out)
{
	float *mean = out, *mx = out + n_feat;
	uint32_t cnt = 0;

	memset(out, 0, 2 * n_feat * sizeof(float));
	for (uint32_t c = 0; c < n_cand; c++) {
		const uint8_t *r = rows + (size_t)c * n_feat;

		if (!(mask >> c & 1))
			continue;
		cnt++;
		for (uint32_t f = 0; f < n_feat; f++) {
			float v = (float)r[f] * (1.0f / 127.0f);

			mean[f] += v;
			mx[f] = v > mx[f] ? v : mx[f];
		}
	}
	if (cnt)
		for (uint32_t f = 0; f < n_feat; f++)
			mean[f] /= (float)cnt;
}

int
qs_ppo_actor_init(struct qs_ppo_actor *a, const struct qs_ppo_agent *ag, char *msg, size_t msglen)
{
	int rc;

	memset(a, 0, sizeof(*a));
	rc = qs_mlp_ws_init(&a->ws_pi, &ag->pi, head_of(&ag->cfg)->max_rows, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_ws_init(&a->ws_vf, &ag->vf, 1, msg, msglen);
	if (rc != QS_OK)
		qs_ppo_actor_free(a);
	return rc;
}

void
qs_ppo_actor_free(struct qs_ppo_actor *a)
{
	qs_mlp_ws_free(&a->ws_pi);
	qs_mlp_ws_free(&a->ws_vf);
}

void
qs_ppo_actor_pin(struct qs_ppo_actor *a, const struct qs_ppo_agent *ag)
{
	qs_mlp_ws_pin(&a->ws_pi, &ag->pi);
	qs_mlp_ws_pin(&a->ws_vf, &ag->vf);
}

void
qs_ppo_actor_unpin(struct qs_ppo_actor *a)
{
	qs_mlp_ws_unpin(&a->ws_pi);
	qs_mlp_ws_unpin(&a->ws_vf);
}

void
qs_ppo_set_threads(struct qs_ppo_agent *ag, uint32_t n)
{
	ag->n_threads = n ? n : 1;
}

uint64_t
qs_ppo_all(const struct qs_ppo_agent *ag, uint32_t n_rows)
{
	uint32_t nl = n_rows * ag->n_out;

	return nl >= 64 ? ~0ull : (1ull << nl) - 1;
}

int
qs_ppo_act(const struct qs_ppo_agent *ag, struct qs_ppo_actor *a, const uint8_t *rows,
	   uint32_t n_rows, uint64_t mask, struct qs_rng *rng, int greedy, uint32_t *action,
	   float *logp, float *value)
{
	const struct head *h = head_of(&ag->cfg);
	uint32_t nf = ag->cfg.n_feat, nl = n_rows * ag->n_out, pick;
	const float *s;
	float lse;

	if (!n_rows || n_rows > h->max_rows || nl > QS_PPO_MAX_LOGITS)
		return QS_E_ARG;
	if (nl < 64)
		mask &= (1ull << nl) - 1;
	if (!mask)
		return QS_E_ARG;
	rows_to_float(h, rows, (size_t)n_rows * nf, a->x);
	s = qs_mlp_forward(&ag->pi, &a->ws_pi, a->x, n_rows, NULL);
	memcpy(a->s, s, nl * sizeof(float));
	lse = qs_mlp_softmax_masked(a->s, nl, mask, a->p);
	if (ag->cfg.algo == QS_ALGO_DQN && !greedy) {
		/* Epsilon-greedy over Q; logp is that distribution's (for the logs only). */
		uint32_t ne = (uint32_t)__builtin_popcountll(mask), best;
		float eps = ag->explore_eps, u = qs_rng_uniform(rng);

		best = qs_mlp_argmax_masked(a->s, nl, mask);
		pick = best;
		if (u < eps) {
			uint64_t m = mask;

			for (uint32_t k = qs_rng_below(rng, ne); k; k--)
				m &= m - 1;
			pick = (uint32_t)__builtin_ctzll(m);
		}
		*action = pick;
		if (logp)
			*logp = logf(eps / (float)ne + (pick == best ? 1 - eps : 0));
	} else {
		pick = greedy ? qs_mlp_argmax_masked(a->s, nl, mask)
			      : qs_mlp_sample_masked(a->p, nl, mask, qs_rng_uniform(rng));
		*action = pick;
		if (logp)
			*logp = a->s[pick] - lse;
	}
	if (value) {
		const float *vx = a->x;

		if (h->value_summary) {
			qs_ppo_summary(rows, n_rows, mask, nf, a->summary);
			vx = a->summary;
		}
		*value = qs_mlp_forward(&ag->vf, &a->ws_vf, vx, 1, NULL)[0];
	}
	return QS_OK;
}

/* ---- consistency with the int8 version during RL (cfg.consist_coef) ---------- */

struct ppo_qc {
	struct qs_quant_plan q;
	struct qs_mlp shadow;
	struct qs_mlp_ws wq, wf;
	struct qs_mlp_fq fq;
	float *x, *ds, *df;
	uint64_t same, counted;
};

static void
qc_free(void *p)
{
	struct ppo_qc *qc = p;

	if (!qc)
		return;
	qs_quant_plan_free(&qc->q);
	qs_mlp_free(&qc->shadow);
	qs_mlp_ws_free(&qc->wq);
	qs_mlp_ws_free(&qc->wf);
	free(qc->x);
	free(qc->ds);
	free(qc->df);
	free(qc);
}

static int
qc_prepare(struct qs_ppo_agent *ag, const struct qs_ppo_buf *b, char *msg, size_t msglen)
{
	struct ppo_qc *qc = ag->qc;
	struct qs_quant_states st = {b->n_feat, b->n, b->rows, b->row_off, b->mask};
	uint32_t cap = ag->cfg.minibatch * QS_MAX_CANDIDATES;
	float pct =
	    ag->cfg.consist_pct > 0 && ag->cfg.consist_pct <= 1 ? ag->cfg.consist_pct : 0.999f;
	int rc;

	if (!qc) {
		qc = calloc(1, sizeof(*qc));
		if (!qc)
			return qs_fail(msg, msglen, QS_E_NOMEM, "ppo: consistency scratch");
		ag->qc = qc;
		rc = qs_quant_plan_init(&qc->q, &ag->pi, msg, msglen);
		if (rc == QS_OK)
			rc = qs_mlp_init(&qc->shadow, ag->pi.n_layers, ag->pi.dim, msg, msglen);
		if (rc == QS_OK)
			rc = qs_mlp_ws_init(&qc->wq, &ag->pi, cap, msg, msglen);
		if (rc == QS_OK)
			rc = qs_mlp_ws_init(&qc->wf, &ag->pi, cap, msg, msglen);
		if (rc == QS_OK) {
			qc->x = malloc((size_t)cap * ag->cfg.n_feat * sizeof(float));
			qc->ds = malloc((size_t)cap * sizeof(float));
			qc->df = malloc((size_t)cap * sizeof(float));
			if (!qc->x || !qc->ds || !qc->df)
				rc = qs_fail(msg, msglen, QS_E_NOMEM, "ppo: consistency scratch");
		}
		if (rc != QS_OK) {
			qc_free(qc); /* a later update starts over */
			ag->qc = NULL;
			return rc;
		}
	}
	qc->same = qc->counted = 0;
	/* This update's activation ranges, from the current net on the batch's states. */
	rc = qs_quant_calibrate(&qc->q, &ag->pi, &st, pct, 1u << 14, msg, msglen);
	if (rc == QS_OK)
		qs_quant_fq(&qc->q, &qc->fq);
	return rc;
}

/* Adds the consistency gradient of decisions idx[0..n) into ag->g_pi. */
static void
qc_grad(struct qs_ppo_agent *ag, const struct qs_ppo_buf *b, const uint32_t *idx, uint32_t n)
{
	struct ppo_qc *qc = ag->qc;
	uint32_t nf = ag->cfg.n_feat, nr = 0;
	float t = ag->cfg.consist_temp > 0 ? ag->cfg.consist_temp : 0.3f;
	float w = ag->cfg.consist_coef / t / (float)n;
	const float *ss, *sf;

	qs_quant_build(&qc->q, &ag->pi);
	qs_quant_fake_params(&qc->q, qc->shadow.p);
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = idx[k], r0 = b->row_off[i], nc = b->row_off[i + 1] - r0;

		rows_to_float(head_of(&ag->cfg), b->rows + (size_t)r0 * nf, (size_t)nc * nf,
			      qc->x + (size_t)nr * nf);
		nr += nc;
	}
	ss = qs_mlp_forward(&qc->shadow, &qc->wq, qc->x, nr, &qc->fq);
	sf = qs_mlp_forward(&ag->pi, &qc->wf, qc->x, nr, NULL);
	nr = 0;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = idx[k], nc = b->row_off[i + 1] - b->row_off[i], af, aq;
		uint64_t mask = b->mask[i];
		float tq[QS_MAX_CANDIDATES], tf[QS_MAX_CANDIDATES], pq[QS_MAX_CANDIDATES],
		    pf[QS_MAX_CANDIDATES];

		if (nc < 64)
			mask &= (1ull << nc) - 1;
		af = qs_mlp_argmax_masked(sf + nr, nc, mask);
		aq = qs_mlp_argmax_masked(ss + nr, nc, mask);
		qc->same += af == aq;
		qc->counted++;
		for (uint32_t c = 0; c < nc; c++) {
			tq[c] = ss[nr + c] / t;
			tf[c] = sf[nr + c] / t;
		}
		qs_mlp_softmax_masked(tq, nc, mask, pq);
		qs_mlp_softmax_masked(tf, nc, mask, pf);
		for (uint32_t c = 0; c < nc; c++) {
			int in = (int)(mask >> c & 1);

			qc->ds[nr + c] = in ? w * (pq[c] - (float)(c == af)) : 0.0f;
			qc->df[nr + c] = in ? w * (pf[c] - (float)(c == aq)) : 0.0f;
		}
		nr += nc;
	}
	/* Straight-through: the gradient at the quantized weights updates the float ones. */
	qs_mlp_backward(&qc->shadow, &qc->wq, nr, qc->ds, &qc->fq, ag->g_pi, NULL);
	qs_mlp_backward(&ag->pi, &qc->wf, nr, qc->df, NULL, ag->g_pi, NULL);
}

/* ---- agent ----------------------------------------------------------------------- */

int
qs_ppo_agent_init(struct qs_ppo_agent *ag, const struct qs_ppo_cfg *c, uint64_t seed, char *msg,
		  size_t msglen)
{
	const struct head *hd = head_of(c);
	uint32_t no = outputs(c);
	uint32_t dpi[4] = {c->n_feat, c->h1, c->h2, no};
	uint32_t dvf[4] = {hd->value_summary ? 2 * c->n_feat : c->n_feat, c->vh, c->vh, 1};
	struct qs_rng init;
	int rc;

	memset(ag, 0, sizeof(*ag));
	if (!c->n_feat || c->n_feat > MAX_FEAT || !c->minibatch || !c->epochs ||
	    !(c->gamma >= 0 && c->gamma <= 1) || !(c->lambda >= 0 && c->lambda <= 1) ||
	    !(c->clip > 0))
		return qs_fail(msg, msglen, QS_E_ARG,
			       "ppo: n_feat %u (1..%d), minibatch %u, epochs %u, gamma %g, "
			       "lambda %g, clip %g",
			       c->n_feat, MAX_FEAT, c->minibatch, c->epochs, (double)c->gamma,
			       (double)c->lambda, (double)c->clip);
	if (c->head == QS_PPO_HEAD_CLASSIFIER &&
	    (c->n_actions < 2 || c->n_actions > QS_PPO_MAX_LOGITS || c->algo != QS_ALGO_PPO ||
	     c->share_coef > 0 || c->consist_coef > 0 || c->center_coef > 0))
		return qs_fail(msg, msglen, QS_E_ARG,
			       "ppo: a classifier needs 2..%d actions (has %u), PPO, and no "
			       "share, consistency or centering terms",
			       QS_PPO_MAX_LOGITS, c->n_actions);
	if (c->head != QS_PPO_HEAD_SCORER && c->head != QS_PPO_HEAD_CLASSIFIER)
		return qs_fail(msg, msglen, QS_E_ARG, "ppo: unknown action head %d", (int)c->head);
	if ((unsigned)c->algo >= QS_ALGO_COUNT)
		return qs_fail(msg, msglen, QS_E_ARG, "ppo: unknown algorithm %d", (int)c->algo);
	ag->cfg = *c;
	qs_rng_seed(&init, seed, hd->init_stream);
	qs_rng_seed(&ag->rng, seed, hd->shuffle_stream);
	ag->n_out = no;
	ag->n_shards = hd->shards;
	ag->cap_rows = c->minibatch * hd->max_rows;
	ag->shard_cap = (c->minibatch + hd->shards - 1) / hd->shards;
	ag->n_threads = 1;
	rc = qs_mlp_init(&ag->pi, 3, dpi, msg, msglen);
	if (rc == QS_OK)
		rc = qs_mlp_init(&ag->vf, 3, dvf, msg, msglen);
	if (rc == QS_OK)
		rc = qs_adam_init(&ag->opt_pi, &c->adam_pi, ag->pi.n_params, msg, msglen);
	if (rc == QS_OK)
		rc = qs_adam_init(&ag->opt_vf, &c->adam_vf, ag->vf.n_params, msg, msglen);
	for (uint32_t k = 0; rc == QS_OK && k < ag->n_shards; k++) {
		struct qs_ppo_shard *h = &ag->sh[k];
		uint32_t sc = ag->shard_cap, cr = sc * hd->max_rows;

		rc = qs_mlp_ws_init(&h->ws_pi, &ag->pi, cr, msg, msglen);
		if (rc == QS_OK)
			rc = qs_mlp_ws_init(&h->ws_vf, &ag->vf, sc, msg, msglen);
		if (rc != QS_OK)
			break;
		h->g_pi = calloc(ag->pi.n_params, sizeof(float));
		h->g_vf = calloc(ag->vf.n_params, sizeof(float));
		h->x = malloc((size_t)cr * c->n_feat * sizeof(float));
		h->xs = malloc((size_t)sc * 2 * c->n_feat * sizeof(float));
		h->dscore = malloc((size_t)cr * no * sizeof(float));
		h->prob = malloc((size_t)cr * no * sizeof(float));
		h->dval = malloc((size_t)sc * sizeof(float));
		h->dh[0] = malloc((size_t)cr * c->h1 * sizeof(float));
		h->dh[1] = malloc((size_t)cr * c->h2 * sizeof(float));
		h->dm = malloc((size_t)sc * (c->h1 > c->h2 ? c->h1 : c->h2) * sizeof(float));
		h->t_pi = malloc((size_t)sc * 4 * sizeof(float));
		h->t_clip = malloc(sc);
		if (!h->g_pi || !h->g_vf || !h->x || !h->xs || !h->dscore || !h->prob || !h->dval ||
		    !h->dh[0] || !h->dh[1] || !h->dm || !h->t_pi || !h->t_clip) {
			rc = qs_fail(msg, msglen, QS_E_NOMEM, "ppo: update scratch");
			break;
		}
		h->t_h = h->t_pi + sc;
		h->t_kl = h->t_pi + 2 * (size_t)sc;
		h->t_dv = h->t_pi + 3 * (size_t)sc;
	}
	if (rc != QS_OK) {
		qs_ppo_agent_free(ag);
		return rc;
	}
	ag->g_pi = calloc(ag->pi.n_params, sizeof(float));
	ag->g_vf = calloc(ag->vf.n_params, sizeof(float));
	if (!ag->g_pi || !ag->g_vf) {
		qs_ppo_agent_free(ag);
		return qs_fail(msg, msglen, QS_E_NOMEM, "ppo: update scratch");
	}
	qs_mlp_init_params(&ag->pi, &init, hd->pi_gain);
	qs_mlp_init_params(&ag->vf, &init, hd->vf_gain);
	return QS_OK;
}

void
qs_ppo_agent_free(struct qs_ppo_agent *ag)
{
	if (!ag)
		return;
	qc_free(ag->qc);
	qs_mlp_free(&ag->pi);
	qs_mlp_free(&ag->vf);
	qs_adam_free(&ag->opt_pi);
	qs_adam_free(&ag->opt_vf);
	for (uint32_t k = 0; k < QS_PPO_SHARDS; k++) {
		struct qs_ppo_shard *h = &ag->sh[k];

		qs_mlp_ws_free(&h->ws_pi);
		qs_mlp_ws_free(&h->ws_vf);
		free(h->g_pi);
		free(h->g_vf);
		free(h->x);
		free(h->xs);
		free(h->dscore);
		free(h->prob);
		free(h->dval);
		free(h->dh[0]);
		free(h->dh[1]);
		free(h->dm);
		free(h->t_pi);
		free(h->t_clip);
	}
	free(ag->g_pi);
	free(ag->g_vf);
	free(ag->perm);
	memset(ag, 0, sizeof(*ag));
}

/*
 * Shared-variance penalty of one layer's outputs h [nr][no] (rows grouped by the
 * shard's decisions): per channel, R = B / (B + W), the between-decision share of
 * the channel's variance (B: of the per-decision means, W: within decisions; row
 * weighted, so B + W is the total variance). Only within-decision differences steer
 * a decision; a channel whose range is spent on what every candidate shares rounds
 * those differences away at 7 bits. R is scale invariant, as per-channel
 * quantization is. Adds coef / no * dR/dh into dh; returns the mean R.
 */
static float
share_penalty(const float *h, uint32_t no, const struct qs_ppo_buf *b, const uint32_t *idx,
	      uint32_t n, float coef, float *dm, float *dh)
{
	uint32_t nr = 0;
	double total = 0;

	for (uint32_t k = 0; k < n; k++) {
		uint32_t nc = b->row_off[idx[k] + 1] - b->row_off[idx[k]];

		for (uint32_t j = 0; j < no; j++) {
			double acc = 0;

			for (uint32_t r = 0; r < nc; r++)
				acc += h[(size_t)(nr + r) * no + j];
			dm[(size_t)k * no + j] = (float)(acc / nc);
		}
		nr += nc;
	}
	for (uint32_t j = 0; j < no; j++) {
		double M = 0, B = 0, W = 0, V, g;
		uint32_t r0 = 0;

		for (uint32_t r = 0; r < nr; r++)
			M += h[(size_t)r * no + j];
		M /= nr;
		for (uint32_t k = 0; k < n; k++) {
			uint32_t nc = b->row_off[idx[k] + 1] - b->row_off[idx[k]];
			double mk = dm[(size_t)k * no + j];

			B += nc * (mk - M) * (mk - M);
			for (uint32_t r = r0; r < r0 + nc; r++)
				W += (h[(size_t)r * no + j] - mk) * (h[(size_t)r * no + j] - mk);
			r0 += nc;
		}
		B /= nr;
		W /= nr;
		V = B + W;
		if (!(V > 1e-12))
			continue;
		total += B / V;
		g = coef / no * 2.0 / (nr * V * V);
		r0 = 0;
		for (uint32_t k = 0; k < n; k++) {
			uint32_t nc = b->row_off[idx[k] + 1] - b->row_off[idx[k]];
			double mk = dm[(size_t)k * no + j];

			for (uint32_t r = r0; r < r0 + nc; r++)
				dh[(size_t)r * no + j] +=
				    (float)(g * (W * (mk - M) - B * (h[(size_t)r * no + j] - mk)));
			r0 += nc;
		}
	}
	return (float)(total / no);
}

/*
 * A shard's figures from its per-decision terms, summed as its head sums them (see
 * struct head): the router's learner in float, shard by shard; the batching
 * learner's in double. The loss gets the means (policy + vf_coef value - ent_coef
 * entropy) added; st the means of each term.
 */
static void
shard_sums_f32(struct qs_ppo_shard *sh, const struct qs_ppo_cfg *c, int clip_active)
{
	float inv = sh->inv, pi_loss = 0, v_loss = 0, ent = 0, kl = 0, clipped = 0;
	struct qs_ppo_stats *st = &sh->st;

	for (uint32_t k = 0; k < sh->n; k++) {
		float dv = sh->t_dv[k];

		pi_loss += sh->t_pi[k];
		ent += sh->t_h[k];
		kl += sh->t_kl[k];
		clipped += sh->t_clip[k] >> clip_active & 1;
		v_loss += 0.5f * dv * dv;
	}
	st->pi_loss = pi_loss * inv;
	st->v_loss = v_loss * inv;
	st->entropy = ent * inv;
	st->approx_kl = kl * inv;
	st->clip_frac = clipped * inv;
	sh->loss += (pi_loss + c->vf_coef * v_loss - c->ent_coef * ent) * inv;
}

static void
shard_sums_f64(struct qs_ppo_shard *sh, const struct qs_ppo_cfg *c, int clip_active)
{
	double lpi = 0, lv = 0, ent = 0, kl = 0, clipped = 0;
	uint32_t n = sh->n;
	struct qs_ppo_stats *st = &sh->st;

	for (uint32_t k = 0; k < n; k++) {
		float e = sh->t_dv[k];

		lpi += sh->t_pi[k];
		ent += sh->t_h[k];
		kl += sh->t_kl[k];
		clipped += sh->t_clip[k] >> clip_active & 1;
		lv += 0.5 * e * e;
	}
	st->pi_loss = (float)(lpi / n);
	st->v_loss = (float)(lv / n);
	st->entropy = (float)(ent / n);
	st->approx_kl = (float)(kl / n);
	st->clip_frac = (float)(clipped / n);
	sh->loss += (float)(lpi / n + c->vf_coef * lv / n - c->ent_coef * ent / n);
}

/* Loss and gradients of one shard (decisions h->idx[0..n), means taken over 1/inv
 * decisions) into h->g_pi, h->g_vf. */
static void
shard_run(struct qs_ppo_shard *sh)
{
	struct qs_ppo_agent *ag = sh->ag;
	const struct qs_ppo_buf *b = sh->b;
	const uint32_t *idx = sh->idx;
	uint32_t n = sh->n;
	const struct qs_ppo_cfg *c = &ag->cfg;
	const struct head *hd = head_of(c);
	uint32_t nf = c->n_feat, no = ag->n_out, nr = 0;
	const float *s, *v;
	float inv = sh->inv;
	struct qs_ppo_stats *st = &sh->st;

	memset(sh->g_pi, 0, ag->pi.n_params * sizeof(float));
	memset(sh->g_vf, 0, ag->vf.n_params * sizeof(float));
	memset(st, 0, sizeof(*st));
	sh->loss = 0;
	if (!n)
		return;
	/* Gather the minibatch: every row, and the value net's input per decision. */
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = idx[k], r0 = b->row_off[i], nc = b->row_off[i + 1] - r0;

		rows_to_float(hd, b->rows + (size_t)r0 * nf, (size_t)nc * nf,
			      sh->x + (size_t)nr * nf);
		if (hd->value_summary)
			qs_ppo_summary(b->rows + (size_t)r0 * nf, nc, b->mask[i], nf,
				       sh->xs + (size_t)k * 2 * nf);
		nr += nc;
	}
	s = qs_mlp_forward(&ag->pi, &sh->ws_pi, sh->x, nr, NULL);
	/* (a classifier's decision is its one row, so its rows are the value's inputs) */
	v = qs_mlp_forward(&ag->vf, &sh->ws_vf, hd->value_summary ? sh->xs : sh->x, n, NULL);
	nr = 0;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = idx[k], nc = b->row_off[i + 1] - b->row_off[i], a = b->action[i];
		uint32_t nl = nc * no;
		uint64_t mask = b->mask[i];
		const float *sk = s + (size_t)nr * no;
		float *p = sh->prob + (size_t)nr * no, *ds = sh->dscore + (size_t)nr * no;
		float lse = qs_mlp_softmax_masked(sk, nl, mask, p);
		float lp = sk[a] - lse, h = qs_mlp_entropy(sk, p, nl, mask, lse);
		float A = b->adv[i], dlogp, kl = 0;
		uint8_t clip = 0;

		memset(ds, 0, nl * sizeof(float));
		if (ag->bc) {
			sh->t_pi[k] = -lp;
			dlogp = -1.0f;
		} else if (c->algo == QS_ALGO_REINFORCE || c->algo == QS_ALGO_A2C) {
			/* (their difference is in A: lambda 1 or cfg.lambda, rollout.c) */
			sh->t_pi[k] = -A * lp;
			dlogp = -A;
		} else {
			float ratio = expf(lp - b->logp[i]);
			float rc = ratio < 1 - c->clip
				       ? 1 - c->clip
				       : (ratio > 1 + c->clip ? 1 + c->clip : ratio);
			float s1 = ratio * A, s2 = rc * A;

			sh->t_pi[k] = -(s1 < s2 ? s1 : s2);
			/* The min picks the unclipped term, or the clipped one, which is
			 * constant in the parameters outside [1 - clip, 1 + clip]. */
			dlogp = (s1 <= s2 || rc == ratio) ? -A * ratio : 0.0f;
			kl = b->logp[i] - lp;
			/* bit 0: the ratio left the range; bit 1: the clipped term won */
			clip = (uint8_t)((rc != ratio) | !(s1 <= s2) << 1);
		}
		sh->t_h[k] = h;
		sh->t_kl[k] = kl;
		sh->t_clip[k] = clip;
		qs_mlp_logp_grad(p, nl, mask, a, dlogp * inv, ds);
		if (c->center_coef > 0) {
			uint32_t ne = 0;
			float mu = 0;

			for (uint32_t cc = 0; cc < nl; cc++)
				if (mask >> cc & 1)
					mu += sk[cc], ne++;
			mu /= (float)(ne ? ne : 1);
			sh->loss += c->center_coef * mu * mu * inv;
			for (uint32_t cc = 0; cc < nl; cc++)
				if (mask >> cc & 1)
					ds[cc] += c->center_coef * 2.0f * mu / (float)ne * inv;
		}
		qs_mlp_entropy_grad(sk, p, nl, mask, lse, h, -c->ent_coef * inv, ds);
		sh->t_dv[k] = v[k] - b->ret[i];
		sh->dval[k] = c->vf_coef * sh->t_dv[k] * inv;
		nr += nc;
	}
	if (c->share_coef > 0) {
		/* Hidden layers and the score, weighted by this shard's share of decisions. */
		float wgt = c->share_coef * (float)n * inv / 3.0f, r = 0;

		for (uint32_t l = 0; l < 2; l++) {
			memset(sh->dh[l], 0, (size_t)nr * ag->pi.dim[l + 1] * sizeof(float));
			r += share_penalty(sh->ws_pi.h[l], ag->pi.dim[l + 1], b, idx, n, wgt,
					   sh->dm, sh->dh[l]);
		}
		r += share_penalty(s, 1, b, idx, n, wgt, sh->dm, sh->dscore);
		st->shared = r / 3.0f * (float)n * inv;
		sh->loss += wgt * r;
		qs_mlp_backward_h(&ag->pi, &sh->ws_pi, nr, sh->dscore, sh->dh, NULL, sh->g_pi,
				  NULL);
	} else {
		qs_mlp_backward(&ag->pi, &sh->ws_pi, nr, sh->dscore, NULL, sh->g_pi, NULL);
	}
	qs_mlp_backward(&ag->vf, &sh->ws_vf, n, sh->dval, NULL, sh->g_vf, NULL);
	if (hd->sums_f64)
		shard_sums_f64(sh, c, hd->clip_active);
	else
		shard_sums_f32(sh, c, hd->clip_active);
}

/* Shard k: a job of the pool (jobs.h). */
static void
shard_job(void *arg, uint32_t k, uint32_t worker)
{
	struct qs_ppo_agent *ag = arg;

	(void)worker;
	shard_run(&ag->sh[k]);
}

/* Split idx[0..n) into the shards, run them (threads if configured), sum in order. */
static float
sharded_loss_grad(struct qs_ppo_agent *ag, const struct qs_ppo_buf *b, const uint32_t *idx,
		  uint32_t n, struct qs_ppo_stats *st)
{
	uint32_t per, off = 0;
	float loss = 0;

	if (n > ag->cfg.minibatch) /* the shards' scratch holds one minibatch */
		return NAN;
	per = (n + ag->n_shards - 1) / ag->n_shards;

	for (uint32_t k = 0; k < ag->n_shards; k++) {
		struct qs_ppo_shard *h = &ag->sh[k];
		uint32_t m = n - off < per ? n - off : per;

		h->ag = ag;
		h->b = b;
		h->idx = idx + off;
		h->n = m;
		h->inv = 1.0f / (float)n;
		off += m;
	}
	/* A thread per shard when threads are configured and the minibatch is worth
	 * it; each shard owns its gradient, summed below in shard order. */
	qs_jobs_run(ag->n_shards, ag->n_threads > 1 && n >= 64 ? ag->n_shards : 1, shard_job, ag);
	memcpy(ag->g_pi, ag->sh[0].g_pi, ag->pi.n_params * sizeof(float));
	memcpy(ag->g_vf, ag->sh[0].g_vf, ag->vf.n_params * sizeof(float));
	for (uint32_t k = 1; k < ag->n_shards; k++) {
		const float *gp = ag->sh[k].g_pi, *gv = ag->sh[k].g_vf;

		for (size_t i = 0; i < ag->pi.n_params; i++)
			ag->g_pi[i] += gp[i];
		for (size_t i = 0; i < ag->vf.n_params; i++)
			ag->g_vf[i] += gv[i];
	}
	if (st)
		memset(st, 0, sizeof(*st));
	for (uint32_t k = 0; k < ag->n_shards; k++) {
		const struct qs_ppo_stats *x = &ag->sh[k].st;

		loss += ag->sh[k].loss;
		if (st) {
			st->pi_loss += x->pi_loss;
			st->v_loss += x->v_loss;
			st->entropy += x->entropy;
			st->approx_kl += x->approx_kl;
			st->clip_frac += x->clip_frac;
			st->shared += x->shared;
		}
	}
	return loss;
}

float
qs_ppo_loss_grad(struct qs_ppo_agent *ag, const struct qs_ppo_buf *b, const uint32_t *idx,
		 uint32_t n, struct qs_ppo_stats *st)
{
	return sharded_loss_grad(ag, b, idx, n, st);
}

/*
 * Advantages to zero mean and unit deviation over the batch, in the head's
 * arithmetic: the deviation as a float and the division in float (scorer), or both
 * in double (classifier).
 */
static void
normalize_adv(float *adv, uint32_t n, int f64)
{
	double mean = 0, var = 0;

	for (uint32_t i = 0; i < n; i++)
		mean += adv[i];
	mean /= n;
	for (uint32_t i = 0; i < n; i++)
		var += (adv[i] - mean) * (adv[i] - mean);
	if (f64) {
		double sd = sqrt(var / n) + 1e-8;

		for (uint32_t i = 0; i < n; i++)
			adv[i] = (float)((adv[i] - mean) / sd);
	} else {
		float sd = (float)sqrt(var / n) + 1e-8f;

		for (uint32_t i = 0; i < n; i++)
			adv[i] = (float)(adv[i] - mean) / sd;
	}
}

int
qs_ppo_update(struct qs_ppo_agent *ag, struct qs_ppo_buf *b, struct qs_ppo_stats *st, char *msg,
	      size_t msglen)
{
	const struct qs_ppo_cfg *c = &ag->cfg;
	const struct head *hd = head_of(c);
	uint32_t epochs = c->algo == QS_ALGO_PPO ? c->epochs : 1, mb = c->minibatch;
	struct qs_ppo_stats acc = {0}, one;
	int consist;

	if (!b->n)
		return qs_fail(msg, msglen, QS_E_ARG, "ppo update: empty buffer");
	if (c->algo == QS_ALGO_DQN && !ag->bc)
		return qs_fail(msg, msglen, QS_E_ARG,
			       "ppo update: DQN learns through qs_dqn_update (dqn.h)");
	if (b->n_feat != c->n_feat || b->n_out != ag->n_out)
		return qs_fail(msg, msglen, QS_E_SHAPE,
			       "ppo update: buffer rows have %u features and %u outputs, the "
			       "policy %u and %u",
			       b->n_feat, b->n_out, c->n_feat, ag->n_out);
	if (ag->perm_cap < b->n) {
		uint32_t *p = realloc(ag->perm, (size_t)b->n * sizeof(uint32_t));

		if (!p)
			return qs_fail(msg, msglen, QS_E_NOMEM, "ppo update: %u indices", b->n);
		ag->perm = p;
		ag->perm_cap = b->n;
	}
	if (c->norm_adv && b->n > 1)
		normalize_adv(b->adv, b->n, hd->adv_f64);
	for (uint32_t i = 0; i < b->n; i++)
		ag->perm[i] = i;
	consist = c->consist_coef > 0 && !ag->bc;
	if (consist) {
		int rc = qc_prepare(ag, b, msg, msglen);

		if (rc != QS_OK)
			return rc;
	}
	for (uint32_t e = 0; e < epochs; e++) {
		/* The agent's own stream; the scorer's permutation carries over between
		 * epochs, the classifier's starts from 0..n-1. */
		if (hd->perm_fresh && e)
			for (uint32_t i = 0; i < b->n; i++)
				ag->perm[i] = i;
		qs_rng_shuffle(&ag->rng, ag->perm, b->n);
		for (uint32_t off = 0; off < b->n; off += mb) {
			uint32_t n = b->n - off < mb ? b->n - off : mb;

			sharded_loss_grad(ag, b, ag->perm + off, n, &one);
			if (consist)
				qc_grad(ag, b, ag->perm + off, n);
			one.grad_norm_pi = qs_adam_step(&ag->opt_pi, ag->pi.p, ag->g_pi);
			one.grad_norm_vf = qs_adam_step(&ag->opt_vf, ag->vf.p, ag->g_vf);
			acc.pi_loss += one.pi_loss;
			acc.v_loss += one.v_loss;
			acc.entropy += one.entropy;
			acc.approx_kl += one.approx_kl;
			acc.clip_frac += one.clip_frac;
			acc.shared += one.shared;
			acc.grad_norm_pi += one.grad_norm_pi;
			acc.grad_norm_vf += one.grad_norm_vf;
			acc.minibatches++;
		}
	}
	ag->updates++;
	if (consist && ((struct ppo_qc *)ag->qc)->counted)
		ag->consist_agree = (float)((double)((struct ppo_qc *)ag->qc)->same /
					    (double)((struct ppo_qc *)ag->qc)->counted);
	if (st) {
		float k = 1.0f / (float)acc.minibatches, m = (float)acc.minibatches;
		float *f[] = {&st->pi_loss,   &st->v_loss, &st->entropy,      &st->approx_kl,
			      &st->clip_frac, &st->shared, &st->grad_norm_pi, &st->grad_norm_vf};

		*st = acc;
		for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
			*f[i] = hd->stats_divide ? *f[i] / m : *f[i] * k;
	}
	return QS_OK;
}
