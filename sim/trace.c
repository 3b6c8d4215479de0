/*
 * trace.c - streamed reader of Azure LLM inference trace CSVs (TIMESTAMP,
 * ContextTokens, GeneratedTokens, in any column order, other columns ignored).
 *
 * Rows are read one at a time into a fixed line buffer, so memory does not grow
 * with the file. Accepts CRLF or LF line ends and a last line without one.
 * TIMESTAMP is "YYYY-MM-DD HH:MM:SS[.fraction]" (UTC, up to 9 fraction digits)
 * or a plain number of seconds. Every error names the file, line and column.
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim_internal.h"

#define TRACE_LINE_MAX	 1024
#define TRACE_MAX_COLS	 32
#define TRACE_MAX_TOKENS 10000000u

struct qs_sim_trace {
	FILE *f;
	bool own;
	char label[QS_SIM_PATH_LEN];
	uint64_t line;
	int col_ts, col_ctx, col_gen, ncols;
	long data_start;
	char buf[TRACE_LINE_MAX + 2];
};

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	int64_t era;
	unsigned yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned)(y - era * 400);
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

static bool
digits(const char *p, int n, unsigned *out)
{
	unsigned v = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (unsigned)(p[i] - '0');
	}
	*out = v;
	return true;
}

/* Parse a timestamp field of length n; returns the offset of the first bad byte or -1. */
static int
parse_ts(const char *p, int n, uint64_t *ns)
{
	unsigned Y, M, D, h, mi, sec;
	uint64_t frac = 0, scale = 100000000ull;
	int i;

	if (n >= 19 && p[4] == '-') {
		if (!digits(p, 4, &Y))
			return 0;
		if (!digits(p + 5, 2, &M) || M < 1 || M > 12)
			return 5;
		if (p[7] != '-')
			return 7;
		if (!digits(p + 8, 2, &D) || D < 1 || D > 31)
			return 8;
		if (p[10] != ' ' && p[10] != 'T')
			return 10;
		if (!digits(p + 11, 2, &h) || h > 23)
			return 11;
		if (p[13] != ':')
			return 13;
		if (!digits(p + 14, 2, &mi) || mi > 59)
			return 14;
		if (p[16] != ':')
			return 16;
		if (!digits(p + 17, 2, &sec) || sec > 60)
			return 17;
		i = 19;
		if (i < n && p[i] == '.') {
			for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
				frac += (uint64_t)(p[i] - '0') * scale;
				scale /= 10;
			}
		}
		if (i < n && p[i] == 'Z')
			i++;
		if (i != n)
			return i;
		if (Y < 1970)
			return 0;
		*ns = ((uint64_t)days_from_civil(Y, M, D) * 86400ull + h * 3600ull + mi * 60ull +
		       sec) *
			  1000000000ull +
		      frac;
		return -1;
	}
	/* Plain seconds, e.g. "12.5". */
	{
		uint64_t whole = 0;

		if (n == 0)
			return 0;
		for (i = 0; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
			if (whole > 100000000000ull)
				return i;
			whole = whole * 10 + (uint64_t)(p[i] - '0');
		}
		if (i == 0)
			return 0;
		if (i < n && p[i] == '.') {
			for (i++; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
				frac += (uint64_t)(p[i] - '0') * scale;
				scale /= 10;
			}
		}
		if (i != n)
			return i;
		*ns = whole * 1000000000ull + frac;
		return -1;
	}
}

static int
parse_tokens(const char *p, int n, uint32_t *v)
{
	uint64_t x = 0;
	int i;

	if (n == 0)
		return 0;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return i;
		x = x * 10 + (uint64_t)(p[i] - '0');
		if (x > TRACE_MAX_TOKENS)
			return i;
	}
	*v = (uint32_t)x;
	return -1;
}

/* Read one line into t->buf without its line end; *len < 0 at EOF. */
static int
read_line(struct qs_sim_trace *t, int *len, char *msg, size_t msglen)
{
	int c, n = 0;

	for (;;) {
		c = getc(t->f);
		if (c == EOF) {
			if (ferror(t->f))
				return qs_fail(msg, msglen, QS_E_IO, "%s:%llu: read error",
					       t->label, (unsigned long long)t->line + 1);
			if (n == 0) {
				*len = -1;
				return QS_OK;
			}
			break;
		}
		if (c == '\n')
			break;
		if (n >= TRACE_LINE_MAX)
			return qs_fail(msg, msglen, QS_E_SIZE,
				       "%s:%llu:%d: line longer than %d bytes", t->label,
				       (unsigned long long)t->line + 1, n + 1, TRACE_LINE_MAX);
		t->buf[n++] = (char)c;
	}
	t->line++;
	if (n && t->buf[n - 1] == '\r')
		n--;
	t->buf[n] = 0;
	*len = n;
	return QS_OK;
}

static bool
name_is(const char *p, int n, const char *want)
{
	while (n && (*p == ' ' || *p == '"')) {
		p++;
		n--;
	}
	while (n && (p[n - 1] == ' ' || p[n - 1] == '"'))
		n--;
	return (size_t)n == strlen(want) && strncasecmp(p, want, (size_t)n) == 0;
}

static int
read_header(struct qs_sim_trace *t, char *msg, size_t msglen)
{
	int len, rc, i, start = 0, col = 0;

	rc = read_line(t, &len, msg, msglen);
	if (rc != QS_OK)
		return rc;
	if (len < 0)
		return qs_fail(msg, msglen, QS_E_TRUNCATED, "%s:1: empty file, no header",
			       t->label);
	/* A UTF-8 byte order mark is allowed before the header. */
	if (len >= 3 && (unsigned char)t->buf[0] == 0xef && (unsigned char)t->buf[1] == 0xbb &&
	    (unsigned char)t->buf[2] == 0xbf)
		start = 3;
	t->col_ts = t->col_ctx = t->col_gen = -1;
	for (i = start; i <= len; i++) {
		if (i == len || t->buf[i] == ',') {
			const char *p = t->buf + start;
			int n = i - start;

			if (col >= TRACE_MAX_COLS)
				return qs_fail(msg, msglen, QS_E_SIZE,
					       "%s:1:%d: more than %d columns", t->label, i + 1,
					       TRACE_MAX_COLS);
			if (name_is(p, n, "TIMESTAMP"))
				t->col_ts = col;
			else if (name_is(p, n, "ContextTokens"))
				t->col_ctx = col;
			else if (name_is(p, n, "GeneratedTokens"))
				t->col_gen = col;
			col++;
			start = i + 1;
		}
	}
	t->ncols = col;
	if (t->col_ts < 0 || t->col_ctx < 0 || t->col_gen < 0)
		return qs_fail(msg, msglen, QS_E_VALUE,
			       "%s:1:1: header must name TIMESTAMP, ContextTokens and "
			       "GeneratedTokens",
			       t->label);
	t->data_start = ftell(t->f);
	return QS_OK;
}

static int
trace_init(struct qs_sim_trace *t, char *msg, size_t msglen)
{
	return read_header(t, msg, msglen);
}

int
qs_sim_trace_open(const char *path, struct qs_sim_trace **out, char *msg, size_t msglen)
{
	struct qs_sim_trace *t;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
	snprintf(t->label, sizeof(t->label), "%s", path);
	t->f = fopen(path, "rb");
	if (!t->f) {
		rc = qs_fail(msg, msglen, QS_E_IO, "%s: %s", path, strerror(errno));
		free(t);
		return rc;
	}
	t->own = true;
	rc = trace_init(t, msg, msglen);
	if (rc != QS_OK) {
		qs_sim_trace_close(t);
		return rc;
	}
	*out = t;
	return QS_OK;
}

int
qs_sim_trace_open_stream(FILE *f, const char *label, struct qs_sim_trace **out, char *msg,
			 size_t msglen)
{
	struct qs_sim_trace *t;
	int rc;

	*out = NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return qs_fail(msg, msglen, QS_E_NOMEM, "out of memory");
	snprintf(t->label, sizeof(t->label), "%s", label);
	t->f = f;
	rc = trace_init(t, msg, msglen);
	if (rc != QS_OK) {
		qs_sim_trace_close(t);
		return rc;
	}
	*out = t;
	return QS_OK;
}

void
qs_sim_trace_close(struct qs_sim_trace *t)
{
	if (!t)
		return;
	if (t->own && t->f)
		fclose(t->f);
	free(t);
}

int
qs_sim_trace_rewind(struct qs_sim_trace *t, char *msg, size_t msglen)
{
	if (t->data_start < 0 || fseek(t->f, t->data_start, SEEK_SET) != 0)
		return qs_fail(msg, msglen, QS_E_IO, "%s: cannot rewind", t->label);
	t->line = 1;
	return QS_OK;
}

int
qs_sim_trace_next(struct qs_sim_trace *t, struct qs_sim_trace_row *row, bool *eof, char *msg,
		  size_t msglen)
{
	int len, rc, i, start, col, bad, got = 0;

	for (;;) {
		rc = read_line(t, &len, msg, msglen);
		if (rc != QS_OK)
			return rc;
		if (len < 0) {
			*eof = true;
			return QS_OK;
		}
		if (len > 0)
			break; /* blank lines are skipped */
	}
	*eof = false;
	row->line = t->line;
	for (i = 0, start = 0, col = 0; i <= len; i++) {
		const char *p;
		int n;

		if (i < len && t->buf[i] != ',')
			continue;
		p = t->buf + start;
		n = i - start;
		bad = -1;
		if (col == t->col_ts) {
			bad = parse_ts(p, n, &row->t_ns);
			got |= 1;
		} else if (col == t->col_ctx) {
			bad = parse_tokens(p, n, &row->context_tokens);
			got |= 2;
		} else if (col == t->col_gen) {
			bad = parse_tokens(p, n, &row->generated_tokens);
			got |= 4;
		}
		if (bad >= 0)
			return qs_fail(msg, msglen, QS_E_VALUE, "%s:%llu:%d: bad %s field",
				       t->label, (unsigned long long)t->line, start + bad + 1,
				       col == t->col_ts ? "TIMESTAMP" : "token count");
		col++;
		start = i + 1;
	}
	if (got != 7 || col != t->ncols)
		return qs_fail(msg, msglen, QS_E_VALUE, "%s:%llu:%d: %d fields, the header has %d",
			       t->label, (unsigned long long)t->line, len + 1, col, t->ncols);
	return QS_OK;
}
