/*
 * qsteer_xdp.c - qsteer-xdp: load the XDP steering program, attach it to an
 * interface, publish policies, and serve qsteer-dp's control protocol (ctl.h) so
 * qsteerctl drives both. A thin main over libqsteer-xdp (include/qsteer/xdp_loader.h):
 * open -> configure -> load -> publish the first policy -> pin -> attach -> serve ->
 * detach -> destroy, with one cleanup path. docs/xdp.md.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <jansson.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "qsteer/ctl.h"
#include "qsteer/xdp_loader.h"

struct daemon {
	struct qs_xdp *x;
	const struct qs_dp_config *cfg;
	const char *ifname;
	const char *mode;
	uint64_t start_ns;
	uint64_t drain;
};

static volatile sig_atomic_t quit;

static void
on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static uint64_t
mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

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

static json_t *policy_obj(struct daemon *d);

static int
cb_status(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	struct daemon *d = ctx;
	struct qs_dp_counters sum;
	uint32_t i, fresh = 0;
	uint64_t now = mono_ns();

	if (qs_xdp_counters(d->x, &sum) != QS_OK) {
		snprintf(msg, msglen, "reading the per-CPU counters failed");
		return QS_E_IO;
	}
	for (i = 0; i < d->cfg->n_backends; i++) {
		struct qs_xdp_backend_state st;

		/* the program's clock is bpf_ktime_get_ns(): CLOCK_MONOTONIC */
		if (qs_xdp_backend_state(d->x, i, &st) == QS_OK && st.valid &&
		    (now < st.last_ns || now - st.last_ns <= d->cfg->report_max_age_ns))
			fresh++;
	}
	json_object_set_new(resp, "daemon", json_string("qsteer-xdp"));
	json_object_set_new(resp, "interface", json_string(d->ifname ? d->ifname : ""));
	json_object_set_new(resp, "xdp_mode", json_string(d->mode));
	json_object_set_new(resp, "workers", json_integer((json_int_t)sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_set_new(resp, "burst", json_integer(1));
	json_object_set_new(resp, "uptime_s", json_integer((json_int_t)((now - d->start_ns) / 1000000000u)));
	json_object_set_new(resp, "clock", json_string("ktime"));
	json_object_set_new(resp, "backends", json_integer(d->cfg->n_backends));
	json_object_set_new(resp, "backends_fresh", json_integer(fresh));
	json_object_set_new(resp, "rx", json_integer((json_int_t)sum.rx));
	json_object_set_new(resp, "tx", json_integer((json_int_t)sum.tx));
	json_object_set_new(resp, "policy", policy_obj(d));
	(void)msg;
	(void)msglen;
	return QS_OK;
}

static int
cb_stats(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	json_t *c = counters_obj(ctx);

	if (!c) {
		snprintf(msg, msglen, "reading the per-CPU counters failed");
		return QS_E_IO;
	}
	json_object_set_new(resp, "counters", c);
	return QS_OK;
}

static int
cb_backends(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	struct daemon *d = ctx;
	struct qs_dp_counters sum;
	json_t *arr = json_array();
	uint64_t now = mono_ns(), drain = qs_xdp_drain(d->x);
	uint32_t i;

	(void)msg;
	(void)msglen;
	qs_xdp_counters(d->x, &sum);
	for (i = 0; i < d->cfg->n_backends; i++) {
		const struct qs_dp_backend_cfg *b = &d->cfg->be[i];
		struct qs_xdp_backend_state st;
		json_t *o = json_object();
		char ip[INET6_ADDRSTRLEN] = "";
		bool fresh;

		memset(&st, 0, sizeof(st));
		qs_xdp_backend_state(d->x, i, &st);
		fresh = st.valid && (now < st.last_ns || now - st.last_ns <= d->cfg->report_max_age_ns);
		if (b->has_ip4)
			inet_ntop(AF_INET, b->ip4, ip, sizeof(ip));
		else if (b->has_ip6)
			inet_ntop(AF_INET6, b->ip6, ip, sizeof(ip));
		json_object_set_new(o, "name", json_string(b->name));
		json_object_set_new(o, "id", json_integer(b->id));
		json_object_set_new(o, "ip", json_string(ip));
		json_object_set_new(o, "port", json_integer(b->port));
		json_object_set_new(o, "capacity_class", json_integer(b->capacity_class));
		json_object_set_new(o, "reported", json_boolean(st.valid));
		json_object_set_new(o, "fresh", json_boolean(fresh));
		json_object_set_new(o, "report_age_ms",
				    st.valid && now >= st.last_ns
					    ? json_integer((json_int_t)((now - st.last_ns) / 1000000))
					    : json_null());
		json_object_set_new(o, "draining", json_boolean(st.rep.flags & QS_QRP_RF_DRAINING));
		json_object_set_new(o, "drained", json_boolean(drain >> i & 1));
		json_object_set_new(o, "waiting", json_integer(st.rep.waiting));
		json_object_set_new(o, "running", json_integer(st.rep.running));
		json_object_set_new(o, "kv_used", json_integer(st.rep.kv_used));
		json_object_set_new(o, "kv_total", json_integer(st.rep.kv_total));
		json_object_set_new(o, "report_seq", json_integer((json_int_t)st.report_seq));
		json_object_set_new(o, "sent", json_integer((json_int_t)sum.to_backend[i]));
		json_array_append_new(arr, o);
	}
	json_object_set_new(resp, "backends", arr);
	return QS_OK;
}

static json_t *
slot_obj(const struct qs_xdp_slot_info *s)
{
	json_t *o;
	char id[32];

	if (!s->used)
		return json_null();
	o = json_object();
	json_object_set_new(o, "source", json_string(s->label));
	json_object_set_new(o, "name", json_string(s->name));
	if (s->builtin) {
		json_object_set_new(o, "builtin", json_true());
	} else {
		snprintf(id, sizeof(id), "%016" PRIx64, s->content_id);
		json_object_set_new(o, "content_id", json_string(id));
		json_object_set_new(o, "layers", json_integer(s->shape[2] ? 3 : 2));
		json_object_set_new(o, "inputs", json_integer(s->shape[0]));
	}
	json_object_set_new(o, "slot_version", json_integer((json_int_t)s->version));
	return o;
}

/* The "policy" object of status and policy.show (docs/control.md). */
static json_t *
policy_obj(struct daemon *d)
{
	struct qs_xdp_slot_info a, p, s;
	uint64_t swaps;
	uint32_t mode, pct;
	json_t *o = json_object();

	qs_xdp_policy_info(d->x, &a, &p, &swaps);
	qs_xdp_policy_second(d->x, &s, &mode, &pct);
	json_object_set_new(o, "mode", json_string(qs_dp_mode_name((enum qs_dp_mode)mode)));
	/* the newest publication the running set holds */
	json_object_set_new(o, "version",
			    json_integer((json_int_t)(s.used && s.version > a.version ? s.version
										: a.version)));
	json_object_set_new(o, "swaps", json_integer((json_int_t)swaps));
	json_object_set_new(o, "kernel", json_string("bpf-swar"));
	json_object_set_new(o, "active", slot_obj(&a));
	if (s.used)
		json_object_set_new(o, mode == QS_XDP_SET_CANARY ? "canary" : "shadow", slot_obj(&s));
	if (mode == QS_XDP_SET_CANARY)
		json_object_set_new(o, "canary_pct", json_integer(pct));
	json_object_set_new(o, "previous", slot_obj(&p));
	return o;
}

static int
cb_policy_show(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	(void)msg;
	(void)msglen;
	json_object_set_new(resp, "policy", policy_obj(ctx));
	return QS_OK;
}

static int
cb_policy_load(void *ctx, enum qs_ctl_mode mode, const char *path, uint32_t pct, json_t *resp,
	       char *msg, size_t msglen)
{
	struct daemon *d = ctx;
	int rc;

	if (mode == QS_CTL_MODE_ACTIVE)
		rc = qs_xdp_load_policy_spec(d->x, path, msg, msglen);
	else
		rc = qs_xdp_load_second_file(d->x, path,
					     mode == QS_CTL_MODE_CANARY ? QS_XDP_SET_CANARY
									: QS_XDP_SET_SHADOW,
					     pct, msg, msglen);
	if (rc != QS_OK)
		return rc;
	snprintf(msg, msglen, "%s loaded as %s", path, qs_ctl_mode_name(mode));
	json_object_set_new(resp, "policy", policy_obj(d));
	return QS_OK;
}

/* A shadow report as an object (JSON null when out of memory). */
static json_t *
shadow_obj(struct daemon *d, const struct qs_dp_shadow *sh, uint32_t top)
{
	char *js = qs_dp_shadow_json(sh, d->cfg, top);
	json_t *o = js ? json_loads(js, 0, NULL) : NULL;

	free(js);
	return o ? o : json_null();
}

/* policy.shadow: qsteer-dp's answer, from the per-CPU shadow map */
static int
cb_shadow(void *ctx, uint32_t top, json_t *resp, char *msg, size_t msglen)
{
	struct daemon *d = ctx;
	struct qs_dp_shadow *tot = malloc(2 * sizeof(*tot)), *win;
	bool running;

	if (!tot) {
		snprintf(msg, msglen, "out of memory");
		return QS_E_NOMEM;
	}
	win = tot + 1;
	running = qs_xdp_shadow(d->x, tot, win);
	json_object_set_new(resp, "policy", policy_obj(d));
	json_object_set_new(resp, "window", running ? shadow_obj(d, win, top) : json_null());
	json_object_set_new(resp, "total", shadow_obj(d, tot, top));
	free(tot);
	return QS_OK;
}

static int
cb_rollback(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	struct daemon *d = ctx;
	int rc = qs_xdp_rollback(d->x, msg, msglen);

	if (rc != QS_OK)
		return rc;
	return cb_policy_show(ctx, resp, msg, msglen);
}

static int
set_drain(struct daemon *d, uint16_t id, bool on, char *msg, size_t msglen)
{
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
cb_drain(void *ctx, uint16_t id, json_t *resp, char *msg, size_t msglen)
{
	(void)resp;
	return set_drain(ctx, id, true, msg, msglen);
}

static int
cb_undrain(void *ctx, uint16_t id, json_t *resp, char *msg, size_t msglen)
{
	(void)resp;
	return set_drain(ctx, id, false, msg, msglen);
}

static int
cb_shutdown(void *ctx, json_t *resp, char *msg, size_t msglen)
{
	(void)ctx;
	(void)resp;
	(void)msg;
	(void)msglen;
	quit = 1;
	return QS_OK;
}

static const struct qs_ctl_ops ops = {
	.status = cb_status,
	.stats = cb_stats,
	.backends = cb_backends,
	.policy_show = cb_policy_show,
	.policy_load = cb_policy_load,
	.rollback = cb_rollback,
	.drain = cb_drain,
	.undrain = cb_undrain,
	.shutdown = cb_shutdown,
	.shadow = cb_shadow,
};

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-xdp --config FILE --iface IF [--mode auto|native|generic]\n"
		"                  [--policy FILE.q8|builtin:NAME] [--egress IF] [--control PATH]\n"
		"                  [--pin DIR] [--stats-out FILE] [--duration S] [--verbose]\n"
		"                  [--prometheus IPV4:PORT] [--pubkey FILE]...\n"
		"       qsteer-xdp --config FILE --check [--policy FILE.q8|builtin:NAME] [--verbose]\n"
		"                  [--pubkey FILE]...\n"
		"  --check loads the program (the verifier runs) and validates the policy, then exits.\n"
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
	static const struct option lo[] = {
		{"config", 1, 0, 'c'}, {"iface", 1, 0, 'i'},	 {"mode", 1, 0, 'm'},
		{"policy", 1, 0, 'p'}, {"egress", 1, 0, 'e'},	 {"control", 1, 0, 's'},
		{"pin", 1, 0, 'P'},    {"stats-out", 1, 0, 'S'}, {"duration", 1, 0, 'd'},
		{"check", 0, 0, 'k'},  {"verbose", 0, 0, 'v'},	 {"help", 0, 0, 'h'},
		{"pubkey", 1, 0, 'Y'}, {"prometheus", 1, 0, 'M'}, {0, 0, 0, 0}};
	const char *cfgp = NULL, *ifname = NULL, *mode = "auto", *pol = NULL, *egress = NULL,
		   *ctlp = NULL, *pin = NULL, *statsp = NULL, *prom = NULL;
	const char *pubkeys[QS_Q8_MAX_PUBKEYS];
	unsigned n_pubkeys = 0, i;
	double duration = 0;
	bool check = false, verbose = false;
	struct qs_dp_config cfg;
	struct qs_xdp_opts xo = {0};
	struct daemon d;
	struct qs_ctl_server *srv = NULL;
	enum qs_xdp_attach_mode am = QS_XDP_MODE_AUTO;
	char msg[1024];
	int o, rc = 1, ifindex = 0;

	memset(&d, 0, sizeof(d));
	while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (o) {
		case 'c': cfgp = optarg; break;
		case 'i': ifname = optarg; break;
		case 'm': mode = optarg; break;
		case 'p': pol = optarg; break;
		case 'e': egress = optarg; break;
		case 's': ctlp = optarg; break;
		case 'P': pin = optarg; break;
		case 'S': statsp = optarg; break;
		case 'd': duration = atof(optarg); break;
		case 'k': check = true; break;
		case 'v': verbose = true; break;
		case 'M': prom = optarg; break;
		case 'Y':
			if (n_pubkeys >= QS_Q8_MAX_PUBKEYS) {
				fprintf(stderr, "qsteer-xdp: at most %d --pubkey options\n",
					QS_Q8_MAX_PUBKEYS);
				return 2;
			}
			pubkeys[n_pubkeys++] = optarg;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!cfgp || (!check && !ifname)) {
		usage(stderr);
		return 2;
	}
	if (strcmp(mode, "native") == 0)
		am = QS_XDP_MODE_NATIVE;
	else if (strcmp(mode, "generic") == 0 || strcmp(mode, "skb") == 0)
		am = QS_XDP_MODE_GENERIC;
	else if (strcmp(mode, "auto") != 0) {
		fprintf(stderr, "qsteer-xdp: --mode %s: auto, native or generic\n", mode);
		return 2;
	}
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
		fprintf(stderr, "qsteer-xdp: note: %s says clock = packet; live XDP uses the kernel's "
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
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	if (qs_xdp_open(&cfg, &xo, &d.x, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-xdp: %s\n", msg);
		return 1;
	}
	d.cfg = qs_xdp_config(d.x);
	d.ifname = ifname;
	d.mode = mode;
	d.start_ns = mono_ns();
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
	while (!quit) {
		if (srv)
			qs_ctl_poll(srv, 100);
		else
			usleep(100000);
		if (srv && qs_ctl_shutdown_requested(srv))
			quit = 1;
		if (duration > 0 && (double)(mono_ns() - d.start_ns) / 1e9 >= duration)
			quit = 1;
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
