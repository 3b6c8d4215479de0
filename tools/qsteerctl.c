/*
 * qsteerctl.c - the operator's client for the control socket of qsteer-dp and
 * qsteer-xdp (docs/control.md).
 *
 * Sends one JSON-lines request, prints the answer as a readable table (or the raw
 * JSON with --json), and says plainly what went wrong: no daemon, no permission,
 * or a refused request with the daemon's reason (for a policy: the loader's).
 * Exit status: 0 ok, 1 refused by the daemon, 2 usage, 3 not running, 4 permission.
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
		"The socket defaults to $QSTEER_CONTROL, else " DEFAULT_SOCKET ".\n");
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
			fprintf(stderr, "qsteerctl: the daemon (qsteer-dp or qsteer-xdp) is not "
					"running: nothing listens on %s\n",
				path);
			return 3;
		}
		if (e == EACCES || e == EPERM) {
			fprintf(stderr, "qsteerctl: permission denied on %s: the socket is mode 0600, "
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
	printf("\nversion    %" JSON_INTEGER_FORMAT "  (%" JSON_INTEGER_FORMAT " swaps, kernel %s)\n",
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

	json_object_foreach(c, k, v) {
		if (json_is_integer(v))
			printf("%-18s %" JSON_INTEGER_FORMAT "\n", k, json_integer_value(v));
	}
	printf("\ndrops by reason\n");
	json_object_foreach(json_object_get(c, "drops"), k, v) {
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

	printf("%-10s %5s %-16s %5s %-6s %7s %7s %7s %11s %9s\n", "NAME", "ID", "ADDRESS", "PORT",
	       "STATE", "AGE_MS", "WAITING", "RUNNING", "KV", "SENT");
	json_array_foreach(a, i, b) {
		const char *state = json_is_true(json_object_get(b, "drained"))	 ? "drain*"
				    : json_is_true(json_object_get(b, "draining")) ? "drain"
				    : json_is_true(json_object_get(b, "fresh"))	 ? "up"
				    : json_is_true(json_object_get(b, "reported")) ? "stale"
										   : "silent";
		char age[24], kv[32];

		if (json_is_integer(json_object_get(b, "report_age_ms")))
			snprintf(age, sizeof(age), "%" JSON_INTEGER_FORMAT, ival(b, "report_age_ms"));
		else
			snprintf(age, sizeof(age), "-");
		snprintf(kv, sizeof(kv), "%" JSON_INTEGER_FORMAT "/%" JSON_INTEGER_FORMAT,
			 ival(b, "kv_used"), ival(b, "kv_total"));
		printf("%-10s %5" JSON_INTEGER_FORMAT " %-16s %5" JSON_INTEGER_FORMAT
		       " %-6s %7s %7" JSON_INTEGER_FORMAT " %7" JSON_INTEGER_FORMAT
		       " %11s %9" JSON_INTEGER_FORMAT "\n",
		       json_string_value(json_object_get(b, "name")), ival(b, "id"),
		       json_string_value(json_object_get(b, "ip")), ival(b, "port"), state, age,
		       ival(b, "waiting"), ival(b, "running"), kv, ival(b, "sent"));
	}
	printf("(drain* = drained by the operator; drain = the agent reports draining)\n");
}

/* The request for argv[i..] (cmd = argv[i]): 0, or the exit status (2 usage, 1 a
 * file that is not there). */
static int
build_request(json_t *req, const char *cmd, int argc, char **argv, int i, char *abspath)
{
	if (strcmp(cmd, "status") == 0 || strcmp(cmd, "stats") == 0 ||
	    strcmp(cmd, "backends") == 0 || strcmp(cmd, "shutdown") == 0) {
		json_object_set_new(req, "cmd", json_string(cmd));
	} else if (strcmp(cmd, "policy") == 0 && i + 1 < argc && strcmp(argv[i + 1], "show") == 0) {
		json_object_set_new(req, "cmd", json_string("policy.show"));
	} else if (strcmp(cmd, "policy") == 0 && i + 1 < argc &&
		   strcmp(argv[i + 1], "shadow") == 0) {
		json_object_set_new(req, "cmd", json_string("policy.shadow"));
		if (i + 2 < argc) {
			char *end = NULL;
			long n = i + 4 == argc ? strtol(argv[i + 3], &end, 10) : -1;

			if (strcmp(argv[i + 2], "--top") != 0 || !end || *end || n < 0 || n > 4096) {
				fprintf(stderr, "qsteerctl: policy shadow [--top N], N 0..4096\n");
				return 2;
			}
			json_object_set_new(req, "top", json_integer(n));
		}
	} else if (strcmp(cmd, "policy") == 0 && i + 1 < argc &&
		   strcmp(argv[i + 1], "rollback") == 0) {
		json_object_set_new(req, "cmd", json_string("policy.rollback"));
	} else if (strcmp(cmd, "policy") == 0 && i + 2 < argc && strcmp(argv[i + 1], "load") == 0) {
		const char *src = argv[i + 2];
		int j;

		/* the daemon runs elsewhere: give it an absolute path */
		if (strncmp(src, "builtin:", 8) != 0) {
			if (!realpath(src, abspath)) {
				fprintf(stderr, "qsteerctl: %s: %s\n", src, strerror(errno));
				return 1;
			}
			src = abspath;
		}
		json_object_set_new(req, "cmd", json_string("policy.load"));
		json_object_set_new(req, "path", json_string(src));
		json_object_set_new(req, "mode", json_string("active"));
		for (j = i + 3; j < argc; j++) {
			if (strcmp(argv[j], "--shadow") == 0) {
				json_object_set_new(req, "mode", json_string("shadow"));
			} else if (strcmp(argv[j], "--canary") == 0 && j + 1 < argc) {
				json_object_set_new(req, "mode", json_string("canary"));
				json_object_set_new(req, "pct", json_integer(atoi(argv[++j])));
			} else {
				usage(stderr);
				return 2;
			}
		}
	} else if (strcmp(cmd, "backend") == 0 && i + 2 < argc &&
		   (strcmp(argv[i + 1], "drain") == 0 || strcmp(argv[i + 1], "undrain") == 0)) {
		char *end;
		long id = strtol(argv[i + 2], &end, 0);

		if (*end || id < 0 || id > 0xffff) {
			fprintf(stderr, "qsteerctl: backend id must be 0..65535\n");
			return 2;
		}
		json_object_set_new(req, "cmd", json_string(strcmp(argv[i + 1], "drain") == 0
								  ? "backend.drain"
								  : "backend.undrain"));
		json_object_set_new(req, "id", json_integer(id));
	} else if (strcmp(cmd, "rx") == 0) {
		json_object_set_new(req, "cmd", json_string("rx"));
		if (i + 1 < argc && strcmp(argv[i + 1], "allow") == 0) {
			char *end;
			long long n = i + 2 < argc ? strtoll(argv[i + 2], &end, 0) : 0;

			if (i + 2 >= argc || *end || n < 1 || n > 1000000000) {
				fprintf(stderr, "qsteerctl: rx allow BURSTS: an integer 1..1000000000\n");
				return 2;
			}
			json_object_set_new(req, "op", json_string("allow"));
			json_object_set_new(req, "bursts", json_integer(n));
		} else if (i + 1 < argc && (strcmp(argv[i + 1], "hold") == 0 ||
					    strcmp(argv[i + 1], "release") == 0 ||
					    strcmp(argv[i + 1], "show") == 0)) {
			json_object_set_new(req, "op", json_string(argv[i + 1]));
		} else if (i + 1 < argc) {
			usage(stderr);
			return 2;
		}
	} else {
		usage(stderr);
		return 2;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path = getenv("QSTEER_CONTROL");
	bool as_json = false;
	json_t *req, *resp = NULL;
	char *line, abspath[PATH_MAX];
	const char *cmd;
	int i = 1, rc;

	if (!path)
		path = DEFAULT_SOCKET;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0) {
			as_json = true;
		} else if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
			path = argv[++i];
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[i];
	req = json_object();
	if (!req) {
		fprintf(stderr, "qsteerctl: out of memory\n");
		return 1;
	}
	rc = build_request(req, cmd, argc, argv, i, abspath);
	if (rc != 0) {
		json_decref(req);
		return rc;
	}
	line = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	rc = talk(path, line, &resp);
	free(line);
	if (rc != 0)
		return rc;
	if (as_json) {
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
		       " s\nclock      %s\nbackends   %" JSON_INTEGER_FORMAT " (%" JSON_INTEGER_FORMAT
		       " fresh)\nrx / tx    %" JSON_INTEGER_FORMAT " / %" JSON_INTEGER_FORMAT "\n",
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

		if (strcmp(cmd, "policy") == 0 && i + 1 < argc && strcmp(argv[i + 1], "load") == 0)
			fprintf(stderr, "qsteerctl: policy rejected, the running one stays: %s\n", e);
		else
			fprintf(stderr, "qsteerctl: refused: %s\n", e);
		json_decref(resp);
		return 1;
	}
	json_decref(resp);
	return 0;
}
