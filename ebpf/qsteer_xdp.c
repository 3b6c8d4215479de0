/*
 * qsteer_xdp.c - qsteer-xdp: load the XDP steering program, attach it to an
 * interface, publish policies, and serve qsteer-dp's control protocol (ctl.h) so
 * qsteerctl drives both (its typed callbacks: the control server writes the answers,
 * as qsteer-dp's). A thin main over libqsteer-xdp (include/qsteer/xdp_loader.h):
 * open -> configure -> load -> publish the first policy -> pin -> attach -> serve ->
 * detach -> destroy, with one cleanup path. docs/xdp.md.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "qsteer/clock.h"
#include "qsteer/ctl.h"
#include "qsteer/opt.h"
#include "qsteer/stop.h"
#include "qsteer/xdp_loader.h"

struct daemon {
	struct qs_xdp *x;
	const struct qs_dp_config *cfg;
	const char *ifname;
	const char *mode;
	uint64_t start_ns;
	uint64_t drain;
};

static json_t *
counters_obj(struct daemon *d)
{
	struct qs_dp_counters sum;
	char *js;
	json_t *o;

	if (qs_xdp_counters(d->x, &sum) != QS_OK)
		return NULL;
	js = qs_dp_counters_json(&sum, d->cfg);
	o = js ? json_loads(js, 0, NULL) : NULL;
	free(js);
	return o;
}

/* ---- the control server's typed callbacks (ctl.h): the server writes the answers,
 * in the same format as qsteer-dp's ------------------------------------------------- */

/* Whether backend i's last report is younger than the configured maximum age (the
 * program's clock is bpf_ktime_get_ns(): CLOCK_MONOTONIC). */
static bool
fresh(const struct daemon *d, const struct qs_xdp_backend_state *st, uint64_t now)
{
	return st->valid && (now < st->last_ns || now - st->last_ns <= d->cfg->report_max_age_ns);
}

static int
get_status(void *ctx, struct qs_ctl_status *out, char *msg, size_t msglen)
{
	struct daemon *d = ctx;
	struct qs_dp_counters sum;
	uint64_t now = qs_mono_ns();
	uint32_t i;

	if (qs_xdp_counters(d->x, &sum) != QS_OK) {
		snprintf(msg, msglen, "reading the per-CPU counters failed");
		return QS_E_IO;
	}
	for (i = 0; i < d->cfg->n_backends; i++) {
		struct qs_xdp_backend_state st;

		if (qs_xdp_backend_state(d->x, i, &st) == QS_OK && fresh(d, &st, now))
			out->backends_fresh++;
	}
	out->daemon = "qsteer-xdp";
	out->interface = d->ifname ? d->ifname : "";
	out->xdp_mode = d->mode;
	out->workers = (uint32_t)sysconf(_SC_NPROCESSORS_ONLN);
	out->burst = 1;
	out->uptime_s = (now - d->start_ns) / 1000000000u;
	out->clock = "ktime";
	out->backends = d->cfg->n_backends;
	out->rx = sum.rx;
	out->tx = sum.tx;
	return QS_OK;
}

static int
get_counters(void *ctx, struct qs_ctl_counters *out, char *msg, size_t msglen)
{
	struct daemon *d = ctx;

	out->cfg = d->cfg;
	if (qs_xdp_counters(d->x, &out->sum) != QS_OK) {
		snprintf(msg, msglen, "reading the per-CPU counters failed");
		return QS_E_IO;
	}
	return QS_OK;
}

static int
get_backends(void *ctx, struct qs_ctl_backends *out, char *msg, size_t msglen)
{
	struct daemon *d = ctx;
	struct qs_dp_counters sum;
	uint64_t now = qs_mono_ns(), drain = qs_xdp_drain(d->x);
	uint32_t i;

	(void)msg;
	(void)msglen;
	qs_xdp_counters(d->x, &sum);
	for (i = 0; i < d->cfg->n_backends; i++) {
		struct qs_ctl_backend *o = &out->be[out->n++];
		struct qs_xdp_backend_state st;

		memset(&st, 0, sizeof(st));
		qs_xdp_backend_state(d->x, i, &st);
		qs_ctl_backend_config(d->cfg, i, o);
		o->reported = st.valid;
		o->fresh = fresh(d, &st, now);
		o->has_report_age = st.valid && now >= st.last_ns;
		o->report_age_ms = o->has_report_age ? (now - st.last_ns) / 1000000 : 0;
		o->draining = st.rep.flags & QS_QRP_RF_DRAINING;
		o->drained = drain >> i & 1;
		o->waiting = st.rep.waiting;
		o->running = st.rep.running;
		o->kv_used = st.rep.kv_used;
		o->kv_total = st.rep.kv_total;
		o->report_seq = st.report_seq;
		o->sent = sum.to_backend[i];
	}
	return QS_OK;
}

static void
slot_of(const struct qs_xdp_slot_info *s, struct qs_ctl_slot *o)
{
	o->used = s->used;
	if (!s->used)
		return;
	o->builtin = s->builtin;
	snprintf(o->source, sizeof(o->source), "%s", s->label);
	snprintf(o->name, sizeof(o->name), "%s", s->name);
	o->content_id = s->content_id;
	o->layers = s->shape[2] ? 3 : 2;
	o->inputs = s->shape[0];
	o->has_slot_version = true;
	o->slot_version = s->version;
}

/* "policy": the active, second (shadow or canary) and previous slots */
static int
get_policy(void *ctx, struct qs_ctl_policy *out, char *msg, size_t msglen)
{
	struct daemon *d = ctx;
	struct qs_xdp_slot_info a, p, s;
	uint32_t mode, pct;

	(void)msg;
	(void)msglen;
	qs_xdp_policy_info(d->x, &a, &p, &out->swaps);
	qs_xdp_policy_second(d->x, &s, &mode, &pct);
	out->mode = (enum qs_ctl_mode)mode; /* QS_XDP_SET_* are qs_ctl_mode's values */
	/* the newest publication the running set holds */
	out->version = s.used && s.version > a.version ? s.version : a.version;
	out->kernel = "bpf-swar";
	out->canary_pct = pct;
	slot_of(&a, &out->active);
	slot_of(&s, &out->second);
	slot_of(&p, &out->previous);
	return QS_OK;
}

static int
get_shadow(void *ctx, struct qs_ctl_shadow *out, char *msg, size_t msglen)
{
	struct daemon *d = ctx;

	(void)msg;
	(void)msglen;
	out->cfg = d->cfg;
	out->running = qs_xdp_shadow(d->x, &out->total, &out->window);
	return QS_OK;
}

static int
load_policy(void *ctx, enum qs_ctl_mode mode, const char *path, uint32_t pct, char *msg,
	    size_t msglen)
{
	struct daemon *d = ctx;
	int rc;

	if (mode == QS_CTL_MODE_ACTIVE)
		rc = qs_xdp_load_policy_spec(d->x, path, msg, msglen);
	else
		rc = qs_xdp_load_second_file(
		    d->x, path, mode == QS_CTL_MODE_CANARY ? QS_XDP_SET_CANARY : QS_XDP_SET_SHADOW,
		    pct, msg, msglen);
	if (rc == QS_OK)
		snprintf(msg, msglen, "%s loaded as %s", path, qs_ctl_mode_name(mode));
	return rc;
}

static int
roll_back(void *ctx, char *msg, size_t msglen)
{
	struct daemon *d = ctx;

	return qs_xdp_rollback(d->x, msg, msglen);
}

static int
set_drain(void *ctx, uint16_t id, bool on, char *msg, size_t msglen)
{
	struct daemon *d = ctx;
	int i = qs_dp_backend_index(d->cfg, id);
	uint64_t m;

	if (i < 0) {
		snprintf(msg, msglen, "no backend with id %u", id);
		return QS_E_ARG;
	}
	m = qs_xdp_drain(d->x);
	m = on ? m | (1ull << i) : m & ~(1ull << i);
	qs_xdp_set_drain(d->x, m);
	return QS_OK;
}

static int
stop(void *ctx, char *msg, size_t msglen)
{
	(void)ctx;
	(void)msg;
	(void)msglen;
	qs_stop_flag = 1;
	return QS_OK;
}

static const struct qs_ctl_ops ops = {
    .get_status = get_status,
    .get_counters = get_counters,
    .get_backends = get_backends,
    .get_policy = get_policy,
    .get_shadow = get_shadow,
    .load_policy = load_policy,
    .roll_back = roll_back,
    .set_drain = set_drain,
    .stop = stop,
};

static void
usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: qsteer-xdp --config FILE --iface IF [--mode auto|native|generic]\n"
	    "                  [--policy FILE.q8|builtin:NAME] [--egress IF] [--control PATH]\n"
	    "                  [--pin DIR] [--stats-out FILE] [--duration S] [--verbose]\n"
	    "                  [--prometheus IPV4:PORT] [--pubkey FILE]...\n"
	    "       qsteer-xdp --config FILE --check [--policy FILE.q8|builtin:NAME] [--verbose]\n"
	    "                  [--pubkey FILE]...\n"
	    "  --check loads the program (the verifier runs) and validates the policy, then "
	    "exits.\n"
	    "  --pubkey (repeatable; also policy_pubkey in the config): policy files, at start\n"
	    "  and loaded live, must be signed with one of these keys.\n"
	    "  Limits: %d backends; policies 16 -> H1 [-> H2] -> 1, H <= %d, router v1 scorer.\n",
	    QS_XDP_MAX_BACKENDS, QS_XDP_MAX_HIDDEN);
}

static int
write_stats(struct daemon *d, const char *path)
{
	json_t *c = counters_obj(d);
	int rc = -1;

	if (c) {
		rc = json_dump_file(c, path, JSON_COMPACT | JSON_PRESERVE_ORDER);
		json_decref(c);
	}
	return rc;
}

int
main(int argc, char **argv)
{
	static const char *const modes[] = {"auto", "native", "generic", "skb", NULL};
	static const enum qs_xdp_attach_mode mode_of[] = {QS_XDP_MODE_AUTO, QS_XDP_MODE_NATIVE,
							  QS_XDP_MODE_GENERIC, QS_XDP_MODE_GENERIC};
	const char *cfgp = NULL, *ifname = NULL, *pol = NULL, *egress = NULL, *ctlp = NULL,
		   *pin = NULL, *statsp = NULL, *prom = NULL;
	const char *pubkeys[QS_Q8_MAX_PUBKEYS];
	unsigned n_pubkeys = 0, n_args = 0, i;
	double duration = 0;
	int check = 0, verbose = 0, mode_i = 0;
	char too_many[64];
	const struct qs_opt opts[] = {
	    QS_OPT_STR("--config", &cfgp),
	    QS_OPT_STR("--iface", &ifname),
	    QS_OPT_CHOICE("--mode", &mode_i, modes, "auto, native or generic"),
	    QS_OPT_STR("--policy", &pol),
	    QS_OPT_STR("--egress", &egress),
	    QS_OPT_STR("--control", &ctlp),
	    QS_OPT_STR("--pin", &pin),
	    QS_OPT_STR("--stats-out", &statsp),
	    QS_OPT_DOUBLE("--duration", &duration, 0, 1e9, "seconds, 0..1e9 (0: until stopped)"),
	    QS_OPT_FLAG("--check", &check, 1),
	    QS_OPT_FLAG("--verbose", &verbose, 1),
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_STRS("--pubkey", pubkeys, &n_pubkeys, QS_Q8_MAX_PUBKEYS, too_many),
	    QS_OPT_STR("--prometheus", &prom),
	    QS_OPT_ARGS(NULL, &n_args, 0, 0),
	    QS_OPT_END,
	};
	const char *mode;
	struct qs_dp_config cfg;
	struct qs_xdp_opts xo = {0};
	struct daemon d;
	struct qs_ctl_server *srv = NULL;
	enum qs_xdp_attach_mode am;
	char msg[1024];
	int rc = 1, ifindex = 0;

	memset(&d, 0, sizeof(d));
	snprintf(too_many, sizeof(too_many), "at most %d --pubkey options", QS_Q8_MAX_PUBKEYS);
	rc = qs_opt_parse_or_usage("qsteer-xdp", opts, argc, argv, 1, NULL, usage);
	if (rc >= 0)
		return rc;
	rc = 1;
	if (!cfgp || (!check && !ifname)) {
		usage(stderr);
		return 2;
	}
	mode = modes[mode_i];
	am = mode_of[mode_i];
	qs_dp_config_defaults(&cfg);
	if (qs_dp_config_load(cfgp, &cfg, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-xdp: %s\n", msg);
		return 2;
	}
	/* --pubkey adds to the configuration's policy_pubkey keys */
	for (i = 0; i < n_pubkeys; i++)
		if (qs_q8_keyset_add_file(&cfg.policy_keys, pubkeys[i], msg, sizeof(msg)) !=
		    QS_OK) {
			fprintf(stderr, "qsteer-xdp: --pubkey: %s\n", msg);
			return 2;
		}
	if (cfg.clock == QS_DP_CLOCK_PACKET)
		fprintf(stderr,
			"qsteer-xdp: note: %s says clock = packet; live XDP uses the kernel's "
			"monotonic clock (bpf_ktime_get_ns)\n",
			cfgp);
	if (!check) {
		ifindex = (int)if_nametoindex(ifname);
		if (!ifindex) {
			fprintf(stderr, "qsteer-xdp: interface %s: %s\n", ifname, strerror(errno));
			return 2;
		}
	}
	if (egress) {
		xo.egress_ifindex = if_nametoindex(egress);
		if (!xo.egress_ifindex) {
			fprintf(stderr, "qsteer-xdp: egress interface %s: %s\n", egress,
				strerror(errno));
			return 2;
		}
	}
	xo.log = stderr;
	xo.log_debug = verbose;
	qs_stop_on_signals();

	if (qs_xdp_open(&cfg, &xo, &d.x, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-xdp: %s\n", msg);
		return 1;
	}
	d.cfg = qs_xdp_config(d.x);
	d.ifname = ifname;
	d.mode = mode;
	d.start_ns = qs_mono_ns();
	if (qs_xdp_load_policy_spec(d.x, pol ? pol : "builtin:lor", msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-xdp: policy refused: %s\n", msg);
		goto cleanup;
	}
	if (check) {
		uint32_t insns = 0, jited = 0, verified = 0;

		qs_xdp_prog_stats(d.x, &insns, &jited, &verified);
		printf("qsteer-xdp: program accepted: %u instructions, %u bytes JITed, %u "
		       "instructions verified; policy %s OK\n",
		       insns, jited, verified, pol ? pol : "builtin:lor");
		rc = 0;
		goto cleanup;
	}
	if (pin && qs_xdp_pin(d.x, pin, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-xdp: %s\n", msg);
		goto cleanup;
	}
	if (ctlp || prom) {
		srv = qs_ctl_open(ctlp, &ops, &d, msg, sizeof(msg));
		if (!srv) {
			fprintf(stderr, "qsteer-xdp: control socket: %s\n", msg);
			goto cleanup;
		}
	}
	/* the same metric names as qsteer-dp: tell them apart by the scrape's job */
	if (prom && qs_ctl_prometheus_open(srv, prom, NULL, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-xdp: %s\n", msg);
		goto cleanup;
	}
	if (prom)
		fprintf(stderr, "qsteer-xdp: prometheus /metrics on port %u\n",
			qs_ctl_prometheus_port(srv));
	if (qs_xdp_attach(d.x, ifindex, am, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-xdp: %s\n", msg);
		goto cleanup;
	}
	fprintf(stderr, "qsteer-xdp: attached to %s (%s mode)%s%s\n", ifname, mode,
		ctlp ? ", control " : "", ctlp ? ctlp : "");
	while (!qs_stop_flag) {
		if (srv)
			qs_ctl_poll(srv, 100);
		else
			usleep(100000);
		if (srv && qs_ctl_shutdown_requested(srv))
			qs_stop_flag = 1;
		if (duration > 0 && (double)(qs_mono_ns() - d.start_ns) / 1e9 >= duration)
			qs_stop_flag = 1;
	}
	if (qs_xdp_detach(d.x, msg, sizeof(msg)) != QS_OK)
		fprintf(stderr, "qsteer-xdp: %s\n", msg);
	rc = 0;
	if (statsp && write_stats(&d, statsp) != 0) {
		fprintf(stderr, "qsteer-xdp: cannot write %s\n", statsp);
		rc = 1;
	}
cleanup:
	qs_ctl_close(srv);
	qs_xdp_close(d.x);
	return rc;
}
