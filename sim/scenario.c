/*
 * scenario.c - scenario files (sim/scenarios/NAME.ini): the cluster, the workload,
 * the SLOs and the report model of one experiment. docs/sim.md lists every key.
 *
 * Sections: [scenario], [workload], [slo] (all classes) or [slo.N], [class.NAME]
 * (up to 8) and [backend.NAME] (groups of identical backends, `count` each; the
 * first key must be `profile` or `model`, later keys override the profile).
 * Unknown sections and keys are errors naming the key and the file; only the first
 * error is reported. Relative paths (trace, profile files) are tried against the
 * repository root first, then against the scenario file's directory.
 */
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sim_profile.h"

#define MAX_GROUPS QS_SIM_MAX_BACKENDS

struct group {
	char name[48];
	struct qs_sim_profile prof;
	uint32_t count;
	uint32_t capacity;
	double down_at_s, up_at_s, drain_at_s;
	struct qs_report_key report_key;
	bool report_source_any;
	enum qs_sim_admission admission;
	double starve_ms;
	enum qs_sim_schedule schedule;
	bool have_schedule;
	bool have_profile;
	char variant[32];
	bool has_quality;
	double quality[QS_SIM_DIFFICULTIES];
};

struct scen_ctx {
	struct qs_sim_config *cfg;
	const char *repo_root;
	const char *base_dir;
	const char *profile_dir;
	struct group g[MAX_GROUPS];
	uint32_t n_groups;
	char err[512];
	bool failed;
	char *msg;
	size_t msglen;
};

static void
resolve(const struct scen_ctx *c, const char *v, char *out, size_t outlen)
{
	if (v[0] == '/') {
		snprintf(out, outlen, "%s", v);
		return;
	}
	if (c->repo_root && c->repo_root[0]) {
		snprintf(out, outlen, "%s/%s", c->repo_root, v);
		if (access(out, R_OK) == 0)
			return;
	}
	if (c->base_dir && c->base_dir[0]) {
		snprintf(out, outlen, "%s/%s", c->base_dir, v);
		if (access(out, R_OK) == 0)
			return;
	}
	snprintf(out, outlen, "%s", v);
}

static int fail(struct scen_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct scen_ctx *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	c->failed = true;
	return 0;
}

static int
parse_dist(const char *v, enum qs_sim_dist *d)
{
	if (!strcmp(v, "fixed"))
		*d = QS_SIM_DIST_FIXED;
	else if (!strcmp(v, "exp") || !strcmp(v, "exponential"))
		*d = QS_SIM_DIST_EXP;
	else if (!strcmp(v, "lognormal"))
		*d = QS_SIM_DIST_LOGNORMAL;
	else if (!strcmp(v, "uniform"))
		*d = QS_SIM_DIST_UNIFORM;
	else
		return -1;
	return 0;
}

static int
len_key(struct qs_sim_len *l, const char *k, const char *v)
{
	double d;
	uint64_t u;

	if (!strcmp(k, "dist"))
		return parse_dist(v, &l->dist);
	if (!strcmp(k, "mean") || !strcmp(k, "cv")) {
		if (qs_sim_parse_double(v, &d) || d < 0)
			return -1;
		*(k[0] == 'm' ? &l->mean : &l->cv) = d;
		return 0;
	}
	if (!strcmp(k, "min") || !strcmp(k, "max")) {
		if (qs_sim_parse_u64(v, &u) || u > 10000000)
			return -1;
		*(k[1] == 'i' ? &l->min : &l->max) = (uint32_t)u;
		return 0;
	}
	return 1;
}

static int
class_key(struct scen_ctx *c, struct qs_sim_class *k, const char *n, const char *v)
{
	uint64_t u;
	double d;
	int r;

	if (!strncmp(n, "prompt_", 7) || !strncmp(n, "gen_", 4)) {
		bool p = n[0] == 'p';

		r = len_key(p ? &k->prompt : &k->gen, n + (p ? 7 : 4), v);
		if (r > 0)
			return fail(c, "unknown key '%s' in [class.%s]", n, k->name);
		if (r < 0)
			return fail(c, "bad value '%s' for key '%s'", v, n);
		return 1;
	}
	if (!strcmp(n, "weight")) {
		if (qs_sim_parse_double(v, &d) || d < 0)
			return fail(c, "bad value '%s' for key '%s'", v, n);
		k->weight = d;
		return 1;
	}
	if (!strcmp(n, "abandon_ms") || !strcmp(n, "abandon_frac")) {
		if (qs_sim_parse_double(v, &d) || d < 0 || (n[8] == 'f' ? d > 1 : d > 1e9))
			return fail(c, "bad value '%s' for key '%s' (%s)", v, n,
				    n[8] == 'f' ? "a fraction in [0, 1]" : "ms, >= 0");
		*(n[8] == 'f' ? &k->abandon_frac : &k->abandon_ms) = d;
		return 1;
	}
	if (!strcmp(n, "difficulty")) {
		if (qs_sim_parse_u64(v, &u) || u >= QS_SIM_DIFFICULTIES)
			return fail(c, "bad value '%s' for key '%s' (0..%d)", v, n,
				    QS_SIM_DIFFICULTIES - 1);
		k->difficulty = (uint8_t)u;
		return 1;
	}
	if (!strcmp(n, "spec_accept")) {
		if (qs_sim_parse_double(v, &d) || !(d >= 0.01 && d <= 0.99))
			return fail(c, "bad value '%s' for key '%s' (a fraction in [0.01, 0.99])",
				    v, n);
		k->spec_accept_pct = (uint8_t)(d * 100.0 + 0.5);
		return 1;
	}
	if (!strcmp(n, "when")) {
		if (!strcmp(v, "always"))
			k->when = QS_SIM_WHEN_ALWAYS;
		else if (!strcmp(v, "burst"))
			k->when = QS_SIM_WHEN_BURST;
		else if (!strcmp(v, "quiet"))
			k->when = QS_SIM_WHEN_QUIET;
		else
			return fail(c, "bad value '%s' for key '%s'", v, n);
		return 1;
	}
	if (!strcmp(n, "slo_class") || !strcmp(n, "priority") || !strcmp(n, "tenant") ||
	    !strcmp(n, "prefix_groups") || !strcmp(n, "prefix_tokens")) {
		uint64_t lim = 1000000;

		if (!strcmp(n, "slo_class") || !strcmp(n, "priority"))
			lim = 3;
		else if (!strcmp(n, "tenant"))
			lim = 65535;

		if (qs_sim_parse_u64(v, &u) || u > lim)
			return fail(c, "bad value '%s' for key '%s'", v, n);
		if (!strcmp(n, "slo_class"))
			k->slo_class = (uint8_t)u;
		else if (!strcmp(n, "priority"))
			k->priority = (uint8_t)u;
		else if (!strcmp(n, "tenant"))
			k->tenant = (uint16_t)u;
		else if (!strcmp(n, "prefix_groups"))
			k->prefix_groups = (uint32_t)u;
		else
			k->prefix_tokens = (uint32_t)u;
		return 1;
	}
	return fail(c, "unknown key '%s' in [class.%s]", n, k->name);
}

static int
workload_key(struct scen_ctx *c, const char *n, const char *v)
{
	struct qs_sim_workload *w = &c->cfg->wl;
	static const struct {
		const char *name;
		size_t off;
	} dk[] = {
	    {"rate", offsetof(struct qs_sim_workload, rate)},
	    {"load", offsetof(struct qs_sim_workload, load)},
	    {"cv", offsetof(struct qs_sim_workload, cv)},
	    {"burst_factor", offsetof(struct qs_sim_workload, burst_factor)},
	    {"burst_mean_s", offsetof(struct qs_sim_workload, burst_mean_s)},
	    {"quiet_mean_s", offsetof(struct qs_sim_workload, quiet_mean_s)},
	    {"amplitude", offsetof(struct qs_sim_workload, amplitude)},
	    {"period_s", offsetof(struct qs_sim_workload, period_s)},
	    {"duration_s", offsetof(struct qs_sim_workload, duration_s)},
	    {"window_start_s", offsetof(struct qs_sim_workload, window_start_s)},
	    {"window_s", offsetof(struct qs_sim_workload, window_s)},
	    {"window_jitter_s", offsetof(struct qs_sim_workload, window_jitter_s)},
	};
	size_t i;
	double d;
	uint64_t u;

	for (i = 0; i < sizeof(dk) / sizeof(dk[0]); i++) {
		if (strcmp(n, dk[i].name))
			continue;
		if (qs_sim_parse_double(v, &d) || d < 0)
			return fail(c, "bad value '%s' for key '%s'", v, n);
		memcpy((char *)w + dk[i].off, &d, sizeof(d));
		return 1;
	}
	if (!strcmp(n, "arrival")) {
		static const char *names[] = {"poisson", "gamma", "bursty", "diurnal", "trace"};

		for (i = 0; i < 5; i++) {
			if (!strcmp(v, names[i])) {
				w->arrival = (enum qs_sim_arrival)i;
				return 1;
			}
		}
		return fail(c, "bad value '%s' for key '%s'", v, n);
	}
	if (!strcmp(n, "thin")) {
		if (qs_sim_parse_double(v, &d) || !(d > 0 && d <= 1))
			return fail(
			    c,
			    "bad value '%s' for key '%s' (the share of rows kept, 0 < thin <= 1)",
			    v, n);
		w->thin = d;
		return 1;
	}
	if (!strcmp(n, "requests")) {
		if (qs_sim_parse_u64(v, &u))
			return fail(c, "bad value '%s' for key '%s'", v, n);
		w->requests = u;
		return 1;
	}
	if (!strcmp(n, "trace")) {
		resolve(c, v, w->trace, sizeof(w->trace));
		return 1;
	}
	return fail(c, "unknown key '%s' in [%s]", n, "workload");
}

/* report_late_us = Q:US,Q:US,...: the lateness distribution's knots (sim.h). */
static int
parse_late(struct scen_ctx *c, struct qs_sim_config *cfg, const char *n, const char *v)
{
	struct qs_sim_report_late l;
	const char *p = v;
	char *end, err[160];
	double q, us;

	memset(&l, 0, sizeof(l));
	while (*p) {
		if (l.n == QS_SIM_LATE_KNOTS)
			return fail(c, "%s: more than %d knots", n, QS_SIM_LATE_KNOTS);
		q = strtod(p, &end);
		if (end == p || *end != ':')
			return fail(c, "%s: knot %u is not Q:US in '%s'", n, l.n + 1, v);
		p = end + 1;
		us = strtod(p, &end);
		if (end == p || (*end && *end != ','))
			return fail(c, "%s: knot %u is not Q:US in '%s'", n, l.n + 1, v);
		if (!(us >= 0 && us <= 1e6))
			return fail(c, "%s: knot %u: %g us is outside 0..1000000", n, l.n + 1, us);
		l.q[l.n] = q;
		l.ns[l.n++] = (uint64_t)(us * 1e3 + 0.5);
		p = *end ? end + 1 : end;
	}
	if (qs_sim_report_late_check(&l, err, sizeof(err)) != QS_OK)
		return fail(c, "%s: %s", n, err);
	cfg->report_late = l;
	return 1;
}

static int
scenario_key(struct scen_ctx *c, const char *n, const char *v)
{
	struct qs_sim_config *cfg = c->cfg;
	double d;

	if (!strcmp(n, "name")) {
		if (strlen(v) >= sizeof(cfg->name))
			return fail(c, "bad value '%s' for key '%s'", v, n);
		snprintf(cfg->name, sizeof(cfg->name), "%s", v);
		return 1;
	}
	if (!strcmp(n, "description") || !strcmp(n, "source"))
		return 1;
	if (!strcmp(n, "primary_metric")) {
		if (strcmp(v, "ttft_p99") && strcmp(v, "slo_attainment") && strcmp(v, "ttft_p50") &&
		    strcmp(v, "tpot_p99") && strcmp(v, "e2e_mean") && strcmp(v, "goodput"))
			return fail(c, "bad value '%s' for key '%s'", v, n);
		snprintf(cfg->primary_metric, sizeof(cfg->primary_metric), "%s", v);
		return 1;
	}
	if (!strcmp(n, "report_max_age_ms")) {
		if (qs_sim_parse_double(v, &d) || d < 0)
			return fail(c, "bad value '%s' for key '%s'", v, n);
		cfg->report_max_age_ns = (uint64_t)(d * 1e6 + 0.5);
		return 1;
	}
	if (!strcmp(n, "report_stale_intervals")) {
		/* qsteer-dp's key: reports missed before a backend is masked (0: never) */
		if (qs_sim_parse_double(v, &d) || d < 0 || d > 1000 || d != (double)(uint32_t)d)
			return fail(c, "bad value '%s' for key '%s'", v, n);
		cfg->report_stale_intervals = (uint32_t)d;
		return 1;
	}
	if (!strcmp(n, "fallback")) {
		if (qs_baseline_parse(v, &cfg->fallback))
			return fail(c,
				    "bad value '%s' for key '%s' (random, rr, lor, lot, jsq, p2c, "
				    "sed or kv)",
				    v, n);
		return 1;
	}
	if (!strcmp(n, "mask_kv_full")) {
		if (strcmp(v, "true") && strcmp(v, "false"))
			return fail(c, "bad value '%s' for key '%s'", v, n);
		cfg->mask_kv_full = v[0] == 't';
		return 1;
	}
	if (!strcmp(n, "report_phase_seed")) {
		if (qs_sim_parse_double(v, &d) || d < 0 || d > 4294967295.0 ||
		    d != (double)(uint32_t)d)
			return fail(c, "bad value '%s' for key '%s' (an integer 0..4294967295)", v,
				    n);
		cfg->report_phase_seed = (uint64_t)d;
		return 1;
	}
	if (!strcmp(n, "report_transit_us")) {
		/* the engine checks it against the interval, which may come later */
		if (qs_sim_parse_double(v, &d) || !(d >= 0 && d <= 1e6))
			return fail(c, "bad value '%s' for key '%s' (microseconds, 0..1000000)", v,
				    n);
		cfg->report_transit_ns = (uint64_t)(d * 1e3 + 0.5);
		return 1;
	}
	if (!strcmp(n, "report_late_us"))
		return parse_late(c, cfg, n, v);
	if (!strcmp(n, "report_interval_ms") || !strcmp(n, "report_loss") ||
	    !strcmp(n, "prefix_max_age_s")) {
		if (qs_sim_parse_double(v, &d) || d < 0)
			return fail(c, "bad value '%s' for key '%s'", v, n);
		if (n[7] == 'i')
			cfg->report_interval_ns = (uint64_t)(d * 1e6 + 0.5);
		else if (n[7] == 'l')
			cfg->report_loss = d;
		else
			cfg->prefix_max_age_ns = (uint64_t)(d * 1e9 + 0.5);
		return 1;
	}
	return fail(c, "unknown key '%s' in [%s]", n, "scenario");
}

static int
slo_key(struct scen_ctx *c, int cls, const char *n, const char *v)
{
	double d;
	int i;

	if (strcmp(n, "ttft_ms") && strcmp(n, "tpot_ms") && strcmp(n, "e2e_ms") &&
	    strcmp(n, "quality_floor"))
		return fail(c, "unknown key '%s' in [%s]", n, "slo");
	if (qs_sim_parse_double(v, &d) || d < 0 || (n[0] == 'q' && d > 1))
		return fail(c, "bad value '%s' for key '%s'%s", v, n,
			    n[0] == 'q' ? " (a share of the best quality, 0..1)" : "");
	for (i = 0; i < QS_SIM_SLO_CLASSES; i++) {
		struct qs_sim_slo *s = &c->cfg->slo[i];

		if (cls >= 0 && i != cls)
			continue;
		if (n[0] == 'q')
			s->quality_floor = d;
		else if (n[1] == 't')
			s->ttft_ms = d;
		else if (n[1] == 'p')
			s->tpot_ms = d;
		else
			s->e2e_ms = d;
	}
	return 1;
}

static int
backend_key(struct scen_ctx *c, struct group *g, const char *n, const char *v)
{
	uint64_t u;
	char path[QS_SIM_PATH_LEN], msg[512];
	int r;

	if (!strcmp(n, "profile")) {
		if (g->have_profile)
			return fail(c, "key '%s' given twice in [backend.%s]", n, g->name);
		if (strchr(v, '/') || strstr(v, ".ini")) {
			resolve(c, v, path, sizeof(path));
		} else {
			snprintf(path, sizeof(path), "%s/%s.ini",
				 c->profile_dir ? c->profile_dir : ".", v);
		}
		if (qs_sim_profile_load(path, &g->prof, msg, sizeof(msg)) != QS_OK)
			return fail(c, "profile: %.400s", msg);
		g->have_profile = true;
		return 1;
	}
	if (!strcmp(n, "count") || !strcmp(n, "capacity")) {
		if (qs_sim_parse_u64(v, &u) || u > (n[1] == 'o' ? QS_SIM_MAX_BACKENDS : 1000000000))
			return fail(c, "bad value '%s' for key '%s'", v, n);
		*(n[1] == 'o' ? &g->count : &g->capacity) = (uint32_t)u;
		return 1;
	}
	if (!strcmp(n, "down_at_s") || !strcmp(n, "up_at_s") || !strcmp(n, "drain_at_s")) {
		double d;

		if (qs_sim_parse_double(v, &d) || d < 0)
			return fail(c, "bad value '%s' for key '%s'", v, n);
		*(n[0] == 'u' ? &g->up_at_s : n[1] == 'o' ? &g->down_at_s : &g->drain_at_s) = d;
		return 1;
	}
	if (!strcmp(n, "report_key")) {
		/* qsteer-dp's per-backend key, 32 hex digits (report_auth.h) */
		if (qs_report_key_hex(v, &g->report_key) != 0)
			return fail(c,
				    "bad value for key '%s' in [backend.%s]: want 32 hex digits, "
				    "not all zero",
				    n, g->name);
		return 1;
	}
	if (!strcmp(n, "admission")) {
		if (strcmp(v, "fcfs") && strcmp(v, "priority") && strcmp(v, "fair"))
			return fail(c, "bad value '%s' for key '%s' (fcfs, priority or fair)", v,
				    n);
		g->admission = !strcmp(v, "priority") ? QS_SIM_ADMIT_PRIORITY
			       : !strcmp(v, "fair")   ? QS_SIM_ADMIT_FAIR
						      : QS_SIM_ADMIT_FCFS;
		return 1;
	}
	if (!strcmp(n, "starve_ms")) {
		double d;

		if (qs_sim_parse_double(v, &d) || d < 0 || d > 1e9)
			return fail(c, "bad value '%s' for key '%s' (ms, 0 for no bound)", v, n);
		g->starve_ms = d;
		return 1;
	}
	if (!strcmp(n, "variant")) {
		if (!*v || strlen(v) >= sizeof(g->variant))
			return fail(c, "bad value '%s' for key '%s' (a name, 1..31 characters)", v,
				    n);
		snprintf(g->variant, sizeof(g->variant), "%s", v);
		return 1;
	}
	if (!strcmp(n, "quality")) {
		if (qs_quality_parse_list(v, g->quality) != 0)
			return fail(c,
				    "bad value '%s' for key '%s' (1..%d accuracies in 0..1, "
				    "difficulty 0 first)",
				    v, n, QS_SIM_DIFFICULTIES);
		g->has_quality = true;
		return 1;
	}
	if (!strcmp(n, "report_source")) {
		if (strcmp(v, "own") && strcmp(v, "any"))
			return fail(c, "bad value '%s' for key '%s' (own or any)", v, n);
		g->report_source_any = v[0] == 'a';
		return 1;
	}
	if (!g->have_profile && strcmp(n, "model"))
		return fail(c, "[backend.%s]: 'profile' or 'model' must come before '%s'", g->name,
			    n);
	if (!strcmp(n, "schedule")) {
		if (g->have_schedule)
			return fail(c, "key '%s' given twice in [backend.%s]", n, g->name);
		if (!strcmp(v, "vllm-v0"))
			g->schedule = QS_SIM_SCHED_VLLM_V0;
		else if (!strcmp(v, "mixed"))
			g->schedule = QS_SIM_SCHED_MIXED;
		else
			return fail(c, "bad value '%s' for key '%s' (vllm-v0 or mixed)", v, n);
		g->have_schedule = true;
		return 1;
	}
	if (!g->have_profile) {
		qs_sim_profile_default(&g->prof);
		snprintf(g->prof.name, sizeof(g->prof.name), "%s", g->name);
		g->have_profile = true;
	}
	r = qs_sim_profile_key(&g->prof, n, v, c->err, sizeof(c->err));
	if (r == 0)
		return fail(c, "unknown key '%s' in [backend.%s]", n, g->name);
	if (r < 0) {
		c->failed = true;
		return 0;
	}
	return 1;
}

/* [forger]: an adversary on the report path (struct qs_sim_forger) */
static int
forger_key(struct scen_ctx *c, const char *n, const char *v)
{
	struct qs_sim_forger *f = &c->cfg->forger;
	static const char *kinds[] = {"none", "source", "spoof", "replay"};
	uint64_t u;
	double d;
	uint32_t i;

	if (!strcmp(n, "kind")) {
		for (i = 0; i < 4; i++)
			if (!strcmp(v, kinds[i])) {
				f->kind = (enum qs_sim_forge)i;
				return 1;
			}
		return fail(c, "bad value '%s' for key '%s' (none, source, spoof or replay)", v, n);
	}
	if (!strcmp(n, "backend")) {
		if (qs_sim_parse_u64(v, &u) || u >= QS_SIM_MAX_BACKENDS)
			return fail(c, "bad value '%s' for key '%s'", v, n);
		f->backend = (uint32_t)u;
		return 1;
	}
	if (!strcmp(n, "interval_ms") || !strcmp(n, "start_s")) {
		if (qs_sim_parse_double(v, &d) || d < 0 || d > 1e6 ||
		    (n[0] == 'i' && !(d * 1e6 >= 1)))
			return fail(c, "bad value '%s' for key '%s'", v, n);
		if (n[0] == 'i')
			f->interval_ns = (uint64_t)(d * 1e6 + 0.5);
		else
			f->start_s = d;
		return 1;
	}
	return fail(c, "unknown key '%s' in [%s]", n, "forger");
}

static int
handler(void *user, const char *section, const char *n, const char *v)
{
	struct scen_ctx *c = user;
	struct qs_sim_config *cfg = c->cfg;
	uint32_t i;

	if (c->failed)
		return 1;
	if (!strcmp(section, "scenario"))
		return scenario_key(c, n, v);
	if (!strcmp(section, "workload"))
		return workload_key(c, n, v);
	if (!strcmp(section, "slo"))
		return slo_key(c, -1, n, v);
	if (!strcmp(section, "forger"))
		return forger_key(c, n, v);
	if (!strncmp(section, "slo.", 4)) {
		if (strlen(section) != 5 || section[4] < '0' || section[4] > '3')
			return fail(c, "unknown section [%s]", section);
		return slo_key(c, section[4] - '0', n, v);
	}
	if (!strncmp(section, "class.", 6)) {
		const char *name = section + 6;

		if (!*name || strlen(name) >= sizeof(cfg->wl.cls[0].name))
			return fail(c, "bad section name [%s]", section);
		for (i = 0; i < cfg->wl.n_classes; i++)
			if (!strcmp(cfg->wl.cls[i].name, name))
				break;
		if (i == cfg->wl.n_classes) {
			struct qs_sim_class *k;

			if (i == QS_SIM_MAX_CLASSES)
				return fail(c, "more than 8 classes at [%s]", section);
			k = &cfg->wl.cls[cfg->wl.n_classes++];
			memset(k, 0, sizeof(*k));
			snprintf(k->name, sizeof(k->name), "%s", name);
			k->weight = 1;
			k->abandon_frac = 1; /* with abandon_ms: every client of the class */
			k->prompt.mean = k->gen.mean = 1;
		}
		return class_key(c, &cfg->wl.cls[i], n, v);
	}
	if (!strncmp(section, "backend.", 8)) {
		const char *name = section + 8;

		if (!*name || strlen(name) >= sizeof(c->g[0].name))
			return fail(c, "bad section name [%s]", section);
		for (i = 0; i < c->n_groups; i++)
			if (!strcmp(c->g[i].name, name))
				break;
		if (i == c->n_groups) {
			if (i == MAX_GROUPS)
				return fail(c, "too many backend groups at [%s]", section);
			memset(&c->g[i], 0, sizeof(c->g[i]));
			snprintf(c->g[i].name, sizeof(c->g[i].name), "%s", name);
			c->g[i].count = 1;
			c->n_groups++;
		}
		return backend_key(c, &c->g[i], n, v);
	}
	return fail(c, "unknown section [%s]", section);
}

int
qs_sim_scenario_parse(const char *text, const char *label, const char *repo_root,
		      const char *base_dir, const char *profile_dir, struct qs_sim_config *cfg,
		      char *msg, size_t msglen)
{
	struct scen_ctx *c;
	uint32_t i, j;
	int line, rc = QS_OK;

	c = calloc(1, sizeof(*c));
	if (!c)
		return qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
	qs_sim_config_default(cfg);
	c->cfg = cfg;
	c->repo_root = repo_root;
	c->base_dir = base_dir;
	c->profile_dir = profile_dir;
	line = ini_parse_string(text, handler, c);
	if (line != 0) {
		rc = qs_fail(msg, msglen, QS_E_VALUE, "%s:%d: %s", label, line,
			     c->failed ? c->err : "syntax error");
		goto out;
	}
	cfg->n_backends = 0;
	for (i = 0; i < c->n_groups; i++) {
		const struct group *g = &c->g[i];

		if (!g->have_profile) {
			rc = qs_fail(msg, msglen, QS_E_VALUE,
				     "%s: [backend.%s] names no profile or model", label, g->name);
			goto out;
		}
		/* mixed is the agent's whole-prompt scheduler: a tokrate server has no
		 * iterations, and chunked prefill already puts decodes first. */
		if (g->schedule == QS_SIM_SCHED_MIXED &&
		    (g->prof.model != QS_SIM_MODEL_BATCH || g->prof.chunked_prefill)) {
			rc = qs_fail(msg, msglen, QS_E_VALUE,
				     "%s: [backend.%s]: schedule = mixed needs the batch model "
				     "without chunked prefill",
				     label, g->name);
			goto out;
		}
		/* One group without a quality table would count 1 everywhere, the best,
		 * and its floor would mask every other group: a forgotten line, not a
		 * reference, so all or none. */
		if (g->has_quality != c->g[0].has_quality) {
			rc = qs_fail(msg, msglen, QS_E_VALUE,
				     "%s: [backend.%s] %s a quality table and [backend.%s] %s; "
				     "give every backend one or none",
				     label, g->name, g->has_quality ? "has" : "lacks", c->g[0].name,
				     c->g[0].has_quality ? "has" : "lacks");
			goto out;
		}
		/* A capacity probe simulates one backend with the first backend's
		 * settings and the probed profile (engine.c), so one schedule for all. */
		if (g->schedule != c->g[0].schedule) {
			rc = qs_fail(msg, msglen, QS_E_VALUE,
				     "%s: [backend.%s]: schedule differs from [backend.%s]'s; "
				     "every backend must use the same",
				     label, g->name, c->g[0].name);
			goto out;
		}
		for (j = 0; j < c->g[i].count; j++) {
			if (cfg->n_backends == QS_SIM_MAX_BACKENDS) {
				rc = qs_fail(msg, msglen, QS_E_VALUE, "%s: more than %d backends",
					     label, QS_SIM_MAX_BACKENDS);
				goto out;
			}
			cfg->backend[cfg->n_backends].prof = c->g[i].prof;
			cfg->backend[cfg->n_backends].capacity = c->g[i].capacity;
			cfg->backend[cfg->n_backends].down_at_s = c->g[i].down_at_s;
			cfg->backend[cfg->n_backends].up_at_s = c->g[i].up_at_s;
			cfg->backend[cfg->n_backends].drain_at_s = c->g[i].drain_at_s;
			cfg->backend[cfg->n_backends].schedule = c->g[i].schedule;
			cfg->backend[cfg->n_backends].report_key = c->g[i].report_key;
			cfg->backend[cfg->n_backends].report_source_any = c->g[i].report_source_any;
			cfg->backend[cfg->n_backends].admission = c->g[i].admission;
			cfg->backend[cfg->n_backends].starve_ms = c->g[i].starve_ms;
			snprintf(cfg->backend[cfg->n_backends].variant,
				 sizeof(cfg->backend[0].variant), "%s", c->g[i].variant);
			cfg->backend[cfg->n_backends].has_quality = c->g[i].has_quality;
			memcpy(cfg->backend[cfg->n_backends].quality, c->g[i].quality,
			       sizeof(c->g[i].quality));
			cfg->n_backends++;
		}
	}
	if (cfg->n_backends == 0)
		rc = qs_fail(msg, msglen, QS_E_VALUE, "%s: no [backend.*] section", label);
	else if (cfg->wl.arrival == QS_SIM_ARR_TRACE && !cfg->wl.trace[0])
		rc = qs_fail(msg, msglen, QS_E_VALUE, "%s: trace arrivals need 'trace'", label);
out:
	free(c);
	return rc;
}

int
qs_sim_scenario_load(const char *path, const char *repo_root, const char *profile_dir,
		     struct qs_sim_config *cfg, char *msg, size_t msglen)
{
	char *text, dir[QS_SIM_PATH_LEN], *slash;
	int rc = qs_sim_read_file(path, &text, msg, msglen);

	if (rc != QS_OK)
		return rc;
	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = 0;
	else
		snprintf(dir, sizeof(dir), ".");
	rc = qs_sim_scenario_parse(text, path, repo_root, dir, profile_dir, cfg, msg, msglen);
	free(text);
	return rc;
}

#ifndef QSTEER_SOURCE_DIR
#define QSTEER_SOURCE_DIR "."
#endif

static const char *
env_dir(const char *name)
{
	const char *e = getenv(name);

	return e && *e ? e : NULL;
}

const char *
qs_sim_repo_root(void)
{
	const char *e = env_dir("QSTEER_REPO_ROOT");

	return e ? e : QSTEER_SOURCE_DIR;
}

int
qs_sim_scenario_dir(char *out, size_t n)
{
	const char *e = env_dir("QSTEER_SCENARIO_DIR");
	int w = e ? snprintf(out, n, "%s", e)
		  : snprintf(out, n, "%s/sim/scenarios", qs_sim_repo_root());

	return w >= 0 && (size_t)w < n ? 0 : -1;
}

int
qs_sim_scenario_path(const char *scenario, const char *dir, char *out, size_t n)
{
	char def[QS_SIM_PATH_LEN];
	size_t len = strlen(scenario);
	int w;

	if (strchr(scenario, '/') || (len > 4 && !strcmp(scenario + len - 4, ".ini"))) {
		w = snprintf(out, n, "%s", scenario);
	} else {
		if (!dir || !*dir) {
			if (qs_sim_scenario_dir(def, sizeof(def)) != 0)
				return -1;
			dir = def;
		}
		w = snprintf(out, n, "%s/%s.ini", dir, scenario);
	}
	return w >= 0 && (size_t)w < n ? 0 : -1;
}

int
qs_sim_scenario_load_named(const char *scenario, const char *dir, struct qs_sim_config *cfg,
			   char *msg, size_t msglen)
{
	char path[QS_SIM_PATH_LEN], prof[QS_SIM_PATH_LEN];
	const char *pe = env_dir("QSTEER_PROFILE_DIR");
	int w;

	if (qs_sim_scenario_path(scenario, dir, path, sizeof(path)) != 0) {
		snprintf(msg, msglen, "scenario '%.64s%s': the path is longer than %d bytes",
			 scenario, strlen(scenario) > 64 ? "..." : "", QS_SIM_PATH_LEN - 1);
		return QS_E_ARG;
	}
	w = pe ? snprintf(prof, sizeof(prof), "%s", pe)
	       : snprintf(prof, sizeof(prof), "%s/sim/profiles", qs_sim_repo_root());
	if (w < 0 || (size_t)w >= sizeof(prof)) {
		snprintf(msg, msglen, "%s: the profile directory's path is too long", path);
		return QS_E_ARG;
	}
	return qs_sim_scenario_load(path, qs_sim_repo_root(), prof, cfg, msg, msglen);
}
