/*
 * qsteerctl.c - the operator's client for the control socket of qsteer-dp and
 * qsteer-xdp (docs/control.md).
 *
 * Sends one JSON-lines request, prints the answer as a readable table (or the raw
 * JSON with --json), and says plainly what went wrong: no daemon, no permission,
 * or a refused request with the daemon's reason (for a policy: the loader's).
 * Exit status: 0 ok, 1 refused by the daemon, 2 usage, 3 not running, 4 permission.
 * The global options, the commands and each command's words are opt.h tables.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "qsteer/opt.h"

#define DEFAULT_SOCKET "/run/qsteer/dp.sock"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteerctl [--socket PATH] [--json] COMMAND\n"
		"  status                       uptime, workers, policy, backends fresh\n"
		"  stats                        counters, drops by reason, sends per backend\n"
		"  backends                     the backend table\n"
		"  policy show\n"
		"  policy shadow [--top N]      the shadow's agreement, where each policy sends,\n"
		"                               the N commonest disagreements (default 10, 0 all)\n"
		"  policy load FILE.q8|builtin:NAME [--shadow | --canary PCT]\n"
		"  policy rollback              drop the shadow/canary, else the previous active\n"
		"  backend drain ID | backend undrain ID\n"
		"  rx [hold | allow BURSTS | release]  qsteer-dp's rx gate (tests, maintenance)\n"
		"  shutdown\n"
		"The socket defaults to $QSTEER_CONTROL, else " DEFAULT_SOCKET ".\n"
		"--socket and --json may also follow the command.\n");
}

static int
talk(const char *path, const char *req, json_t **resp)
{
	struct sockaddr_un sa;
	char buf[1 << 16];
	size_t have = 0;
	int fd;
	json_error_t je;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		fprintf(stderr, "qsteerctl: socket path too long: %s\n", path);
		return 2;
	}
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		if (e == ENOENT || e == ECONNREFUSED) {
			fprintf(stderr,
				"qsteerctl: the daemon (qsteer-dp or qsteer-xdp) is not "
				"running: nothing listens on %s\n",
				path);
			return 3;
		}
		if (e == EACCES || e == EPERM) {
			fprintf(stderr,
				"qsteerctl: permission denied on %s: the socket is mode 0600, "
				"run as the user that runs the daemon (or root)\n",
				path);
			return 4;
		}
		fprintf(stderr, "qsteerctl: %s: %s\n", path, strerror(e));
		return 3;
	}
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req) || write(fd, "\n", 1) != 1) {
		fprintf(stderr, "qsteerctl: %s: write: %s\n", path, strerror(errno));
		close(fd);
		return 3;
	}
	while (have < sizeof(buf) - 1) {
		struct pollfd p = {fd, POLLIN, 0};
		ssize_t r;

		if (poll(&p, 1, 30000) <= 0)
			break;
		r = read(fd, buf + have, sizeof(buf) - 1 - have);
		if (r <= 0)
			break;
		have += (size_t)r;
		if (memchr(buf, '\n', have))
			break;
	}
	close(fd);
	buf[have] = 0;
	*resp = json_loads(buf, JSON_DISABLE_EOF_CHECK, &je);
	if (!*resp) {
		fprintf(stderr, "qsteerctl: no valid answer from %s (%s)\n", path,
			have ? je.text : "connection closed");
		return 3;
	}
	return 0;
}

static json_int_t
ival(json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void
print_slot(const char *what, json_t *s)
{
	if (!json_is_object(s))
		return;
	printf("%-10s %s", what, json_string_value(json_object_get(s, "source")));
	if (json_object_get(s, "content_id"))
		printf("  (name %s, content %s)", json_string_value(json_object_get(s, "name")),
		       json_string_value(json_object_get(s, "content_id")));
	printf("\n");
}

static void
print_policy(json_t *p)
{
	printf("mode       %s", json_string_value(json_object_get(p, "mode")));
	if (json_object_get(p, "canary_pct"))
		printf(" (%" JSON_INTEGER_FORMAT "%% of requests)", ival(p, "canary_pct"));
	printf(
	    "\nversion    %" JSON_INTEGER_FORMAT "  (%" JSON_INTEGER_FORMAT " swaps, kernel %s)\n",
	    ival(p, "version"), ival(p, "swaps"), json_string_value(json_object_get(p, "kernel")));
	print_slot("active", json_object_get(p, "active"));
	print_slot("shadow", json_object_get(p, "shadow"));
	print_slot("canary", json_object_get(p, "canary"));
	print_slot("previous", json_object_get(p, "previous"));
}

/* One shadow report (qs_dp_shadow_json): agreement, sends side by side, the top
 * disagreement pairs with their share of all disagreements. */
static void
print_shadow_report(const char *title, json_t *r)
{
	json_int_t scored = ival(r, "scored"), dis = ival(r, "disagreed");
	size_t i;
	json_t *e;

	printf("%s: %" JSON_INTEGER_FORMAT " requests scored, %" JSON_INTEGER_FORMAT
	       " agreed, %" JSON_INTEGER_FORMAT " disagreed",
	       title, scored, ival(r, "agreed"), dis);
	if (json_is_integer(json_object_get(r, "agreement_ppm")))
		printf("; agreement %.2f%%", (double)ival(r, "agreement_ppm") / 1e4);
	printf("\n  %-16s %10s %10s %10s\n", "BACKEND", "ACTIVE", "SHADOW", "SHADOW-ACT");
	json_array_foreach(json_object_get(r, "per_backend"), i, e)
	    printf("  %-16s %10" JSON_INTEGER_FORMAT " %10" JSON_INTEGER_FORMAT
		   " %+10" JSON_INTEGER_FORMAT "\n",
		   json_string_value(json_object_get(e, "backend")), ival(e, "active"),
		   ival(e, "shadow"), ival(e, "shadow") - ival(e, "active"));
	if (json_array_size(json_object_get(r, "disagreements")) == 0)
		return;
	printf("  top disagreements (active sent -> shadow would send)\n");
	json_array_foreach(json_object_get(r, "disagreements"), i, e)
	    printf("  %16s -> %-16s %10" JSON_INTEGER_FORMAT "  %5.1f%%\n",
		   json_string_value(json_object_get(e, "active")),
		   json_string_value(json_object_get(e, "shadow")), ival(e, "count"),
		   dis ? 100.0 * (double)ival(e, "count") / (double)dis : 0.0);
}

static void
print_shadow(json_t *resp)
{
	json_t *p = json_object_get(resp, "policy"), *w = json_object_get(resp, "window");

	if (json_is_object(w)) {
		print_slot("shadow", json_object_get(p, "shadow"));
		print_slot("active", json_object_get(p, "active"));
		print_shadow_report("since the shadow was loaded", w);
	} else {
		printf("no shadow policy runs (mode %s)\n",
		       json_string_value(json_object_get(p, "mode")));
	}
	print_shadow_report("since start", json_object_get(resp, "total"));
}

static void
print_stats(json_t *c)
{
	const char *k;
	json_t *v;

	json_object_foreach(c, k, v)
	{
		if (json_is_integer(v))
			printf("%-18s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
	}
	printf("\ndrops by reason\n");
	json_object_foreach(json_object_get(c, "drops"), k, v)
	{
		if (json_integer_value(v))
			printf("  %-16s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
	}
	printf("\nsent per backend\n");
	json_object_foreach(json_object_get(c, "to_backend"), k, v)
	    printf("  %-16s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
}

static void
print_backends(json_t *a)
{
	size_t i;
	json_t *b;

	printf("%-10s %5s %-16s %5s %-6s %7s %7s %7s %11s %9s  %-8s %s\n", "NAME", "ID", "ADDRESS",
	       "PORT", "STATE", "AGE_MS", "WAITING", "RUNNING", "KV", "SENT", "VARIANT",
	       "BELOW_FLOOR");
	json_array_foreach(a, i, b)
	{
		const char *state = json_is_true(json_object_get(b, "drained"))	   ? "drain*"
				    : json_is_true(json_object_get(b, "draining")) ? "drain"
				    : json_is_true(json_object_get(b, "fresh"))	   ? "up"
				    : json_is_true(json_object_get(b, "reported")) ? "stale"
										   : "silent";
		char age[24], kv[32], floor[64] = "-";
		const char *variant = json_string_value(json_object_get(b, "variant"));
		json_t *fl = json_object_get(b, "below_floor"), *ds, *dv;
		size_t c, d, n = 0;

		if (json_is_integer(json_object_get(b, "report_age_ms")))
			snprintf(age, sizeof(age), "%" JSON_INTEGER_FORMAT,
				 ival(b, "report_age_ms"));
		else
			snprintf(age, sizeof(age), "-");
		snprintf(kv, sizeof(kv), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
			 ival(b, "kv_used"), ival(b, "kv_total"));
		/* "CLASS:DIFFICULTIES ...", e.g. "2:23 3:123": the floors it fails */
		json_array_foreach(fl, c, ds)
		{
			/* SLO classes and difficulties are 0..3: "c:dddd " fits 7 bytes */
			if (!json_array_size(ds) || c > 3 || n + 8 >= sizeof(floor))
				continue;
			if (n)
				floor[n++] = ' ';
			floor[n++] = (char)('0' + c);
			floor[n++] = ':';
			json_array_foreach(ds, d, dv)
			{
				json_int_t v = json_integer_value(dv);

				if (d < 4 && v >= 0 && v <= 3)
					floor[n++] = (char)('0' + v);
			}
			floor[n] = '\0';
		}
		printf("%-10s %5" JSON_INTEGER_FORMAT " %-16s %5" JSON_INTEGER_FORMAT
		       " %-6s %7s %7" JSON_INTEGER_FORMAT " %7" JSON_INTEGER_FORMAT
		       " %11s %9" JSON_INTEGER_FORMAT "  %-8s %s\n",
		       json_string_value(json_object_get(b, "name")), ival(b, "id"),
		       json_string_value(json_object_get(b, "ip")), ival(b, "port"), state, age,
		       ival(b, "waiting"), ival(b, "running"), kv, ival(b, "sent"),
		       variant ? variant : "-", floor);
	}
	printf("(drain* = drained by the operator; drain = the agent reports draining;\n"
	       " BELOW_FLOOR: SLO class:difficulties whose quality floor it fails)\n");
}

/* ---- the request: one opt.h table per command ------------------------------------ */

/* What a command builds: the request (send: complete, not --help), policy load's
 * absolute path; the global options, which may also follow the command. */
struct req {
	json_t *req;
	bool send;
	bool load; /* policy load: a refusal is the loader's */
	char abspath[PATH_MAX];
	int json;
	const char *path;
};

/* The global options' rows, in every command's table too */
#define GLOBAL_OPTS(r) QS_OPT_FLAG("--json", &(r)->json, 1), QS_OPT_STR("--socket", &(r)->path)

/*
 * A command's words after its name (argv[0]): min..max positional ones into w[],
 * the global options, and opts (END-ended, at most MAX_CMD_OPTS rows) the
 * command's own. -1 to go on, else the exit status (0 after --help; 2 after a
 * refusal, with the usage).
 */
#define MAX_CMD_OPTS 4
static int
words(int argc, char **argv, struct req *r, const struct qs_opt *opts, const char **w, unsigned min,
      unsigned max)
{
	unsigned n = 0;
	struct qs_opt t[MAX_CMD_OPTS + 5] = {
	    GLOBAL_OPTS(r),
	    QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_ARGS(w, &n, min, max),
	};
	size_t k = 4;

	for (; opts && opts->name && k < MAX_CMD_OPTS + 4; opts++)
		t[k++] = *opts;
	t[k] = (struct qs_opt)QS_OPT_END;
	return qs_opt_parse_or_usage("qsteerctl", t, argc, argv, 1, r, usage);
}

/* status, stats, backends, shutdown; policy show, policy rollback: no arguments */
static int
cmd_plain(int argc, char **argv, void *ctx)
{
	struct req *r = ctx;
	int rc = words(argc, argv, r, NULL, NULL, 0, 0);

	if (rc >= 0)
		return rc;
	if (!strcmp(argv[0], "show"))
		json_object_set_new(r->req, "cmd", json_string("policy.show"));
	else if (!strcmp(argv[0], "rollback"))
		json_object_set_new(r->req, "cmd", json_string("policy.rollback"));
	else
		json_object_set_new(r->req, "cmd", json_string(argv[0]));
	r->send = true;
	return 0;
}

/* policy shadow [--top N] */
static int
cmd_shadow(int argc, char **argv, void *ctx)
{
	struct req *r = ctx;
	uint32_t top = 0;
	const char *top_given = NULL;
	const struct qs_opt opts[] = {
	    QS_OPT_U32("--top", &top, 0, 4096, "an integer 0..4096", .seen = &top_given),
	    QS_OPT_END,
	};
	int rc = words(argc, argv, r, opts, NULL, 0, 0);

	if (rc >= 0)
		return rc;
	json_object_set_new(r->req, "cmd", json_string("policy.shadow"));
	if (top_given)
		json_object_set_new(r->req, "top", json_integer(top));
	r->send = true;
	return 0;
}

/* --shadow, and --canary PCT: the mode, the last one given, as before; a given PCT
 * is an integer the daemon checks (and refuses with mode shadow) */
static int
opt_mode(const struct qs_opt *opt, const char *v, void *ctx)
{
	struct req *r = ctx;
	char *end;
	long long pct;

	if (!v) {
		json_object_set_new(r->req, "mode", json_string("shadow"));
		return 0;
	}
	errno = 0;
	pct = strtoll(v, &end, 10);
	if (!*v || *end || errno) {
		fprintf(stderr, "qsteerctl: %s %s: not an integer\n", opt->name, v);
		return -1;
	}
	json_object_set_new(r->req, "mode", json_string("canary"));
	json_object_set_new(r->req, "pct", json_integer(pct));
	return 0;
}

/* policy load FILE.q8|builtin:NAME [--shadow | --canary PCT]; 1 for a file that is
 * not there */
static int
cmd_load(int argc, char **argv, void *ctx)
{
	struct req *r = ctx;
	const char *src = NULL;
	const struct qs_opt opts[] = {
	    QS_OPT_FLAG("--shadow", NULL, 1, .fn = opt_mode),
	    QS_OPT_FN("--canary", opt_mode),
	    QS_OPT_END,
	};
	int rc;

	/* the request's keys in the order the daemon has always been sent them */
	json_object_set_new(r->req, "cmd", json_string("policy.load"));
	json_object_set_new(r->req, "path", json_string(""));
	json_object_set_new(r->req, "mode", json_string("active"));
	rc = words(argc, argv, r, opts, &src, 1, 1);
	if (rc >= 0)
		return rc;
	/* the daemon runs elsewhere: give it an absolute path */
	if (strncmp(src, "builtin:", 8) != 0) {
		if (!realpath(src, r->abspath)) {
			fprintf(stderr, "qsteerctl: %s: %s\n", src, strerror(errno));
			return 1;
		}
		src = r->abspath;
	}
	r->load = true;
	json_object_set_new(r->req, "path", json_string(src));
	r->send = true;
	return 0;
}

/* policy show | shadow | load | rollback */
static int
cmd_policy(int argc, char **argv, void *ctx)
{
	static const struct qs_opt_cmd cmds[] = {
	    {"show", cmd_plain},     {"shadow", cmd_shadow}, {"load", cmd_load},
	    {"rollback", cmd_plain}, {NULL, NULL},
	};

	return qs_opt_dispatch("qsteerctl policy", cmds, argc, argv, 1, usage, ctx);
}

/* backend drain ID | backend undrain ID */
static int
cmd_drain(int argc, char **argv, void *ctx)
{
	struct req *r = ctx;
	const char *w = NULL;
	int rc = words(argc, argv, r, NULL, &w, 1, 1);
	char *end;
	long id;

	if (rc >= 0)
		return rc;
	id = strtol(w, &end, 0);
	if (*end || id < 0 || id > 0xffff) {
		fprintf(stderr, "qsteerctl: backend id must be 0..65535\n");
		return 2;
	}
	json_object_set_new(
	    r->req, "cmd",
	    json_string(strcmp(argv[0], "drain") == 0 ? "backend.drain" : "backend.undrain"));
	json_object_set_new(r->req, "id", json_integer(id));
	r->send = true;
	return 0;
}

static int
cmd_backend(int argc, char **argv, void *ctx)
{
	static const struct qs_opt_cmd cmds[] = {
	    {"drain", cmd_drain},
	    {"undrain", cmd_drain},
	    {NULL, NULL},
	};

	return qs_opt_dispatch("qsteerctl backend", cmds, argc, argv, 1, usage, ctx);
}

/* rx hold | rx release | rx show | rx allow BURSTS: the gate's operation */
static int
cmd_rx_op(int argc, char **argv, void *ctx)
{
	struct req *r = ctx;
	const char *w = NULL;
	bool allow = !strcmp(argv[0], "allow");
	int rc = words(argc, argv, r, NULL, &w, 0, allow);
	char *end = NULL;
	long long bursts = w ? strtoll(w, &end, 0) : 0;

	if (rc >= 0)
		return rc;
	if (allow && (!w || *end || bursts < 1 || bursts > 1000000000)) {
		fprintf(stderr, "qsteerctl: rx allow BURSTS: an integer 1..1000000000\n");
		return 2;
	}
	json_object_set_new(r->req, "op", json_string(argv[0]));
	if (allow)
		json_object_set_new(r->req, "bursts", json_integer(bursts));
	r->send = true;
	return 0;
}

/* rx [hold | allow BURSTS | release | show]: without an operation, the gate's state */
static int
cmd_rx(int argc, char **argv, void *ctx)
{
	static const struct qs_opt_cmd cmds[] = {
	    {"hold", cmd_rx_op},  {"release", cmd_rx_op}, {"show", cmd_rx_op},
	    {"allow", cmd_rx_op}, {NULL, NULL},
	};
	struct req *r = ctx;

	json_object_set_new(r->req, "cmd", json_string("rx"));
	if (argc >= 2)
		return qs_opt_dispatch("qsteerctl rx", cmds, argc, argv, 1, usage, ctx);
	r->send = true;
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct qs_opt_cmd cmds[] = {
	    {"status", cmd_plain},   {"stats", cmd_plain},   {"backends", cmd_plain},
	    {"shutdown", cmd_plain}, {"policy", cmd_policy}, {"backend", cmd_backend},
	    {"rx", cmd_rx},	     {NULL, NULL},
	};
	static struct req r;
	int at = 0;
	const struct qs_opt opts[] = {
	    GLOBAL_OPTS(&r),  QS_OPT_HELP_FLAG("-h"), QS_OPT_HELP_FLAG("--help"),
	    QS_OPT_STOP(&at), /* the command's words: its own table */
	    QS_OPT_END,
	};
	json_t *resp = NULL;
	char *line;
	const char *cmd;
	int rc;

	r.path = getenv("QSTEER_CONTROL");
	if (!r.path)
		r.path = DEFAULT_SOCKET;
	rc = qs_opt_parse_or_usage("qsteerctl", opts, argc, argv, 1, NULL, usage);
	if (rc >= 0)
		return rc;
	if (at >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[at];
	r.req = json_object();
	if (!r.req) {
		fprintf(stderr, "qsteerctl: out of memory\n");
		return 1;
	}
	rc = qs_opt_dispatch("qsteerctl", cmds, argc, argv, at, usage, &r);
	if (rc != 0 || !r.send) { /* refused, or --help */
		json_decref(r.req);
		return rc;
	}
	line = json_dumps(r.req, JSON_COMPACT);
	json_decref(r.req);
	rc = talk(r.path, line, &resp);
	free(line);
	if (rc != 0)
		return rc;
	if (r.json) {
		char *s = json_dumps(resp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);

		printf("%s\n", s);
		free(s);
	} else if (!json_is_true(json_object_get(resp, "ok"))) {
		/* printed below */
	} else if (json_object_get(resp, "counters")) {
		print_stats(json_object_get(resp, "counters"));
	} else if (json_object_get(resp, "backends") &&
		   json_is_array(json_object_get(resp, "backends"))) {
		print_backends(json_object_get(resp, "backends"));
	} else if (json_object_get(resp, "total")) {
		print_shadow(resp);
	} else if (strcmp(cmd, "rx") == 0) {
		printf("rx %s, %" JSON_INTEGER_FORMAT " bursts allowed, %" JSON_INTEGER_FORMAT
		       " bursts received\n",
		       json_is_true(json_object_get(resp, "gated")) ? "gated" : "free",
		       ival(resp, "credit"), ival(resp, "bursts"));
	} else if (strcmp(cmd, "status") == 0) {
		printf("workers    %" JSON_INTEGER_FORMAT "\nuptime     %" JSON_INTEGER_FORMAT
		       " s\nclock      %s\nbackends   %" JSON_INTEGER_FORMAT
		       " (%" JSON_INTEGER_FORMAT " fresh)\nrx / tx    %" JSON_INTEGER_FORMAT
		       " / %" JSON_INTEGER_FORMAT "\n",
		       ival(resp, "workers"), ival(resp, "uptime_s"),
		       json_string_value(json_object_get(resp, "clock")), ival(resp, "backends"),
		       ival(resp, "backends_fresh"), ival(resp, "rx"), ival(resp, "tx"));
		if (json_object_get(resp, "xdp_mode"))
			printf("interface  %s (XDP %s mode)\n",
			       json_string_value(json_object_get(resp, "interface")),
			       json_string_value(json_object_get(resp, "xdp_mode")));
		print_policy(json_object_get(resp, "policy"));
	} else {
		if (json_object_get(resp, "message"))
			printf("%s\n", json_string_value(json_object_get(resp, "message")));
		if (json_object_get(resp, "policy"))
			print_policy(json_object_get(resp, "policy"));
	}
	if (!json_is_true(json_object_get(resp, "ok"))) {
		const char *e = json_string_value(json_object_get(resp, "error"));

		if (r.load)
			fprintf(stderr, "qsteerctl: policy rejected, the running one stays: %s\n",
				e);
		else
			fprintf(stderr, "qsteerctl: refused: %s\n", e);
		json_decref(resp);
		return 1;
	}
	json_decref(resp);
	return 0;
}
