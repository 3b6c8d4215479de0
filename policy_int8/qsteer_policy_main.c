/*
 * qsteer_policy_main.c - the qsteer-policy tool: look inside .q8 files, evaluate them
 * on feature rows, and benchmark the kernels.
 *
 *   qsteer-policy inspect FILE           header, layers, sizes, content id, CRC status
 *   qsteer-policy eval FILE [--kernel K] feature rows as CSV on stdin -> scores/choices
 *   qsteer-policy bench [--json] ...     kernel timings (policy_bench.c)
 *   qsteer-policy keygen PUB SEC         Ed25519 key pair as hex files
 *   qsteer-policy sign FILE SEC [OUT]    append a signature (in place without OUT)
 *   qsteer-policy verify FILE PUB...     load as a program trusting those keys would
 *
 * Each command's words are an opt.h table; main dispatches on the command.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy_bench.h"
#include "qsteer/opt.h"
#include "qsteer/policy.h"

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-policy inspect FILE\n"
		"       qsteer-policy eval FILE [--kernel scalar|avx2|avx512vnni|neon|auto] < "
		"rows.csv\n"
		"       qsteer-policy bench [--json] [--seconds S] [--kernel K]\n"
		"       qsteer-policy keygen PUB SEC\n"
		"       qsteer-policy sign FILE SEC [OUT]\n"
		"       qsteer-policy verify FILE PUB [PUB...]\n"
		"\n"
		"eval reads one candidate's features per line (comma-separated integers 0..127);\n"
		"a blank line ends one request's candidates (scorer) -- classifiers take one row\n"
		"per decision. Lines starting with '#' are ignored.\n");
}

/* Output that could not be written (a full disk, a closed pipe) is an error too. */
static int
finish_stdout(void)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "qsteer-policy: writing the output failed: %s\n", strerror(errno));
		return 1;
	}
	return 0;
}

#define MAX_WORDS 64 /* verify's FILE and keys */

/*
 * A command's words (argv[0] is the command): min..max positional ones into w[]
 * (*n of them), and opt, when given, the command's one option. -1 to go on, else
 * the exit status (0 after --help; 2 after a refusal, with the usage).
 */
static int
words(int argc, char **argv, const struct qs_opt *opt, const char **w, unsigned *n, unsigned min,
      unsigned max)
{
	const struct qs_opt help = QS_OPT_HELP_FLAG("--help");
	const struct qs_opt t[] = {
	    QS_OPT_ARGS(w, n, min, max),
	    opt ? *opt : help,
	    help,
	    QS_OPT_END,
	};

	*n = 0;
	return qs_opt_parse_or_usage("qsteer-policy", t, argc, argv, 1, NULL, usage);
}

static int
cmd_inspect(int argc, char **argv, void *ctx)
{
	struct qs_policy *p = NULL;
	const char *w[1];
	unsigned n_w;
	char msg[512], when[64];
	time_t t;
	struct tm tm;
	size_t params = 0;
	int rc = words(argc, argv, NULL, w, &n_w, 1, 1);

	(void)ctx;
	if (rc >= 0)
		return rc;
	if (qs_policy_load_file(w[0], NULL, &p, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-policy: %s\n", msg);
		return 1;
	}
	t = (time_t)p->created;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	else
		snprintf(when, sizeof(when), "%llu", (unsigned long long)p->created);
	printf("file        %s\n", w[0]);
	printf("name        %s\n", p->name[0] ? p->name : "(none)");
	printf("format      q8 version %u, %u bytes\n", p->version, p->file_size);
	printf("kind        %s\n", qs_q8_kind_name(p->kind));
	printf("schema      %#x (%s)\n", p->schema, qs_q8_schema_name(p->schema));
	printf("created     %s\n", when);
	printf("content id  %016llx\n", (unsigned long long)p->content_id);
	printf("crc32c      %08x ok\n", p->crc);
	printf("signature   %s\n",
	       p->has_signature ? "Ed25519 trailer (not verified here: no key given)" : "none");
	printf("layers      %u\n", p->n_layers);
	for (unsigned l = 0; l < p->n_layers; l++) {
		const struct qs_policy_layer *L = &p->layer[l];
		size_t n = (size_t)L->n_in * L->n_out;

		params += n + L->n_out;
		printf("  %u: %3u -> %3u  %6zu weights  %s\n", l + 1, L->n_in, L->n_out, n,
		       L->m ? "requant+relu" : "int32 outputs");
	}
	printf("parameters  %zu\n", params);
	printf("macs/row    ");
	{
		size_t macs = 0;

		for (unsigned l = 0; l < p->n_layers; l++)
			macs += (size_t)p->layer[l].n_in * p->layer[l].n_out;
		printf("%zu\n", macs);
	}
	for (unsigned a = 0; a < p->n_actions; a++) {
		static const char *const order[] = {"oldest", "shortest", "priority", "?"};
		uint32_t fl = p->action[a].flags;

		/* the loader checked the flags: every field below is defined */
		printf("action %2u   max_seqs %u  max_tokens %u  kv_reserve %u%%  order %s%s  "
		       "spec %u\n",
		       a, p->action[a].max_seqs, p->action[a].max_tokens,
		       p->action[a].kv_reserve_pct, order[fl & QS_Q8_ACT_ORDER_MASK],
		       fl & QS_Q8_ACT_COALESCE ? "  coalesce" : "",
		       (fl & QS_Q8_ACT_SPEC_MASK) >> QS_Q8_ACT_SPEC_SHIFT);
	}
	qs_policy_free(p);
	return finish_stdout();
}

/* Parse one CSV line of exactly n integers 0..127; *err names the problem. */
static int
parse_row(const char *line, unsigned n, uint8_t *row, char *err, size_t errlen)
{
	const char *s = line;

	for (unsigned i = 0; i < n; i++) {
		char *end;
		long v;

		while (*s == ' ' || *s == '\t')
			s++;
		errno = 0;
		v = strtol(s, &end, 10);
		if (end == s) {
			snprintf(err, errlen, "column %ld: expected an integer (feature %u of %u)",
				 (long)(s - line) + 1, i + 1, n);
			return -1;
		}
		if (errno == ERANGE)
			v = -1; /* reported as out of range just below */
		if (v < 0 || v > QS_INT8_ACT_MAX) {
			snprintf(err, errlen, "column %ld: feature %u is %.*s, features are 0..127",
				 (long)(s - line) + 1, i + 1, (int)(end - s), s);
			return -1;
		}
		row[i] = (uint8_t)v;
		s = end;
		while (*s == ' ' || *s == '\t')
			s++;
		if (i + 1 < n) {
			if (*s != ',') {
				snprintf(err, errlen,
					 "column %ld: %u feature%s, the policy takes %u",
					 (long)(s - line) + 1, i + 1, i ? "s" : "", n);
				return -1;
			}
			s++;
		}
	}
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	if (*s) {
		snprintf(err, errlen, "column %ld: more than the %u features the policy takes",
			 (long)(s - line) + 1, n);
		return -1;
	}
	return 0;
}

static int
flush_request(const struct qs_policy *p, enum qs_kernel k, const uint8_t *rows, unsigned n,
	      unsigned long req)
{
	int32_t scores[QS_MAX_CANDIDATES];
	uint16_t choice;

	int rc;

	if (!n)
		return 0;
	rc = qs_policy_choose(p, k, rows, 1, n, NULL, scores, &choice);
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-policy: scoring request %lu failed: %s\n", req,
			qs_status_name(rc));
		return -1;
	}
	for (unsigned c = 0; c < n; c++)
		printf("%lu,%u,%d,%u\n", req, c, scores[c], choice);
	return 0;
}

/* --kernel K into the row's enum qs_kernel */
static int
opt_kernel(const struct qs_opt *opt, const char *v, void *ctx)
{
	(void)ctx;
	if (qs_kernel_parse(v, opt->dst) == QS_OK)
		return 0;
	fprintf(stderr,
		"qsteer-policy: %s %s: unknown kernel (scalar, avx2, avx512vnni, neon or "
		"auto)\n",
		opt->name, v);
	return -1;
}

static int
cmd_eval(int argc, char **argv, void *ctx)
{
	static uint8_t rows[QS_MAX_CANDIDATES * QS_INT8_MAX_DIM];
	enum qs_kernel k = QS_KERNEL_AUTO;
	const char *w[1];
	unsigned n_w;
	const struct qs_opt kernel = QS_OPT_FN("--kernel", opt_kernel, .dst = &k);
	struct qs_policy *p = NULL;
	char msg[512], err[160];
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0, req = 0;
	unsigned n = 0;
	int rc = words(argc, argv, &kernel, w, &n_w, 1, 1);

	(void)ctx;
	if (rc >= 0)
		return rc;
	rc = 1;
	if (k != QS_KERNEL_AUTO && !qs_kernel_supported(k)) {
		fprintf(stderr, "qsteer-policy: kernel %s does not run on this CPU or build\n",
			qs_kernel_name(k));
		return 1;
	}
	if (qs_policy_load_file(w[0], NULL, &p, msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "qsteer-policy: %s\n", msg);
		return 1;
	}
	if (p->kind == QS_Q8_KIND_SCORER)
		printf("request,candidate,score,choice\n");
	else {
		printf("row,action");
		for (unsigned j = 0; j < p->n_out; j++)
			printf(",out%u", j);
		printf("\n");
	}
	while (getline(&line, &cap, stdin) > 0) {
		const char *s = line;

		lineno++;
		while (*s == ' ' || *s == '\t')
			s++;
		if (*s == '#')
			continue;
		if (*s == '\n' || *s == '\r' || !*s) {
			if (p->kind == QS_Q8_KIND_SCORER && n) {
				if (flush_request(p, k, rows, n, req++))
					goto out;
			}
			n = 0;
			continue;
		}
		if (p->kind == QS_Q8_KIND_SCORER && n == QS_MAX_CANDIDATES) {
			fprintf(stderr,
				"qsteer-policy: stdin line %lu: more than %d candidates in one "
				"request\n",
				lineno, QS_MAX_CANDIDATES);
			goto out;
		}
		if (parse_row(line, p->n_in, rows + (size_t)n * p->n_in, err, sizeof(err))) {
			fprintf(stderr, "qsteer-policy: stdin line %lu, %s\n", lineno, err);
			goto out;
		}
		if (p->kind == QS_Q8_KIND_SCORER) {
			n++;
			continue;
		}
		{
			int32_t out[QS_INT8_MAX_DIM];

			int st = qs_policy_run(p, k, rows, p->n_in, 1, out);

			if (st != QS_OK) {
				fprintf(stderr, "qsteer-policy: stdin line %lu: %s\n", lineno,
					qs_status_name(st));
				goto out;
			}
			printf("%lu,%u", req++, qs_int8_argmax(out, p->n_out));
			for (unsigned j = 0; j < p->n_out; j++)
				printf(",%d", out[j]);
			printf("\n");
		}
	}
	if (p->kind == QS_Q8_KIND_SCORER && flush_request(p, k, rows, n, req))
		goto out;
	rc = 0;
out:
	if (finish_stdout())
		rc = 1;
	free(line);
	qs_policy_free(p);
	return rc;
}

/* keygen PUB SEC | sign FILE SEC [OUT] | verify FILE PUB...: 0, or the message and 1 */
static int
cmd_keys(int argc, char **argv, void *ctx)
{
	/* verify: the same key set and loader check as qsteer-dp, qsteer-xdp, qsteer-agent */
	static struct qs_q8_keyset ks;
	struct qs_policy_load_opts o = {.keys = &ks};
	struct qs_policy *p = NULL;
	const char *w[MAX_WORDS];
	unsigned n;
	char msg[512];
	bool keygen = !strcmp(argv[0], "keygen"), sign = !strcmp(argv[0], "sign");
	int rc = words(argc, argv, NULL, w, &n, 2, keygen ? 2 : sign ? 3 : MAX_WORDS);

	(void)ctx;
	if (rc >= 0)
		return rc;
	if (keygen) {
		rc = qs_q8_keygen(w[0], w[1], msg, sizeof(msg));
	} else if (sign) {
		rc = qs_q8_sign_file(w[0], n == 3 ? w[2] : w[0], w[1], msg, sizeof(msg));
	} else {
		rc = QS_OK;
		for (unsigned i = 1; i < n && rc == QS_OK; i++)
			rc = qs_q8_keyset_add_file(&ks, w[i], msg, sizeof(msg));
		if (rc == QS_OK)
			rc = qs_policy_load_file(w[0], &o, &p, msg, sizeof(msg));
		if (rc == QS_OK)
			printf("%s: signature ok (content id %016llx)\n", w[0],
			       (unsigned long long)p->content_id);
		qs_policy_free(p);
	}
	if (rc != QS_OK) {
		fprintf(stderr, "qsteer-policy: %s\n", msg);
		return 1;
	}
	return 0;
}

static int
cmd_bench(int argc, char **argv, void *ctx)
{
	(void)ctx;
	return qs_policy_bench_cmd(argc, argv);
}

int
main(int argc, char **argv)
{
	static const struct qs_opt_cmd cmds[] = {
	    {"inspect", cmd_inspect},
	    {"eval", cmd_eval},
	    {"keygen", cmd_keys},
	    {"sign", cmd_keys},
	    {"verify", cmd_keys},
	    {"bench", cmd_bench},
	    {NULL, NULL},
	};

	return qs_opt_dispatch("qsteer-policy", cmds, argc, argv, 1, usage, NULL);
}
