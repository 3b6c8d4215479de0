/*
 * exec_http.c - the engine executor: steered requests forwarded to an
 * OpenAI-compatible engine over HTTP with libcurl's multi interface, the engine's
 * response body relayed to each client in response datagrams (direct server
 * return, from the service socket, as serve.c sends the model executor's), cancels
 * turned into closed engine streams, admission control in front of the engine, and
 * reports merging the engine's /metrics with the agent's own counters.
 * include/qsteer/agent_http.h has the wire extension; docs/deploy.md the prose.
 *
 * One thread: recvmmsg on the service socket and curl_multi_poll on the engine's
 * connections, woken by whichever comes first, and by the report and scrape
 * deadlines. Every table is sized at start; a request's body and its chunk
 * buffers are the only allocations per request.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <curl/curl.h>

#include "qsteer/agent_http.h"
#include "qsteer/ttft_window.h"
#include "agent_int.h"
#include "udp.h"

#define SCRAPE_MAX   (4u << 20)
#define DOWN_SCRAPES 3 /* consecutive failed scrapes: report the backend draining */

/* ---- /metrics ------------------------------------------------------------------ */

/* name matches one of the names in list (NULL-terminated) */
static bool
name_in(const char *name, size_t n, const char *const *list)
{
	for (; *list; list++)
		if (strlen(*list) == n && !memcmp(name, *list, n))
			return true;
	return false;
}

static const char *const m_running[] = {"vllm:num_requests_running", "sglang:num_running_reqs",
					NULL};
static const char *const m_waiting[] = {"vllm:num_requests_waiting", "sglang:num_queue_reqs", NULL};
static const char *const m_kv[] = {"vllm:gpu_cache_usage_perc", "vllm:kv_cache_usage_perc",
				   "sglang:token_usage", NULL};
static const char *const m_gen[] = {"vllm:generation_tokens_total", NULL};
static const char *const m_gen_tps[] = {"sglang:gen_throughput", NULL};
static const char *const m_ttft[] = {"vllm:time_to_first_token_seconds_bucket",
				     "sglang:time_to_first_token_seconds_bucket", NULL};

void
qs_engine_metrics_parse(const char *text, size_t len, struct qs_engine_metrics *m)
{
	const char *p = text, *end = text + len;

	memset(m, 0, sizeof(*m));
	m->ok = true;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *name = p, *q, *val;
		char num[64];
		size_t nlen, vlen;
		double v, le = INFINITY;
		char *e;

		if (!eol)
			eol = end;
		if (*p == '#' || eol == p)
			goto next;
		for (q = p; q < eol && *q != '{' && *q != ' '; q++)
			;
		nlen = (size_t)(q - name);
		if (q < eol && *q == '{') {
			const char *lb = q, *rb = memchr(q, '}', (size_t)(eol - q));
			const char *l;

			if (!rb)
				goto next;
			l = memmem(lb, (size_t)(rb - lb), "le=\"", 4);
			if (l) {
				char b[64];
				size_t bl;
				const char *qe;

				l += 4;
				qe = memchr(l, '"', (size_t)(rb - l));
				bl = qe ? (size_t)(qe - l) : 0;
				if (bl && bl < sizeof(b)) {
					memcpy(b, l, bl);
					b[bl] = '\0';
					le = strcmp(b, "+Inf") ? strtod(b, NULL) : INFINITY;
				}
			}
			q = rb + 1;
		}
		while (q < eol && *q == ' ')
			q++;
		val = q;
		while (q < eol && *q != ' ')
			q++;
		vlen = (size_t)(q - val);
		if (vlen == 0 || vlen >= sizeof(num))
			goto next;
		memcpy(num, val, vlen);
		num[vlen] = '\0';
		v = strtod(num, &e);
		if (*e || v != v)
			goto next;
		if (name_in(name, nlen, m_running)) {
			m->running += v;
			m->have_running = true;
		} else if (name_in(name, nlen, m_waiting)) {
			m->waiting += v;
			m->have_waiting = true;
		} else if (name_in(name, nlen, m_kv)) {
			/* several models or ranks: the fullest one decides */
			if (!m->have_kv || v > m->kv_frac)
				m->kv_frac = v;
			m->have_kv = true;
		} else if (name_in(name, nlen, m_gen)) {
			m->gen_tokens += v;
			m->have_gen = true;
		} else if (name_in(name, nlen, m_gen_tps)) {
			m->gen_tps += v;
			m->have_gen = true;
		} else if (name_in(name, nlen, m_ttft)) {
			uint32_t i;

			/* sum over label sets by bucket bound */
			for (i = 0; i < m->n_ttft; i++)
				if (m->ttft_le[i] == le)
					break;
			if (i == m->n_ttft) {
				if (m->n_ttft == 32)
					goto next;
				m->ttft_le[m->n_ttft] = le;
				m->ttft_count[m->n_ttft++] = 0;
			}
			m->ttft_count[i] += v;
			m->have_ttft = true;
		}
	next:
		p = eol + 1;
	}
	if (m->kv_frac < 0)
		m->kv_frac = 0;
	if (m->kv_frac > 1)
		m->kv_frac = 1;
}

double
qs_engine_ttft_p99(const struct qs_engine_metrics *prev, const struct qs_engine_metrics *cur)
{
	double le[32], cnt[32], total = 0, target;
	uint32_t n = 0, i, j;

	if (!cur->have_ttft)
		return -1;
	for (i = 0; i < cur->n_ttft; i++) {
		double d = cur->ttft_count[i];

		for (j = 0; prev && j < prev->n_ttft; j++)
			if (prev->ttft_le[j] == cur->ttft_le[i])
				d -= prev->ttft_count[j];
		le[n] = cur->ttft_le[i];
		cnt[n++] = d < 0 ? 0 : d;
	}
	/* buckets in bound order (the exposition lists them so; not relied upon) */
	for (i = 1; i < n; i++)
		for (j = i; j > 0 && le[j] < le[j - 1]; j--) {
			double t = le[j];

			le[j] = le[j - 1];
			le[j - 1] = t;
			t = cnt[j];
			cnt[j] = cnt[j - 1];
			cnt[j - 1] = t;
		}
	if (n == 0)
		return -1;
	total = cnt[n - 1]; /* cumulative: the +Inf bucket holds them all */
	if (total <= 0)
		return -1;
	target = 0.99 * total;
	for (i = 0; i < n; i++)
		if (cnt[i] >= target)
			return isinf(le[i]) ? (i > 0 ? le[i - 1] : 0) : le[i];
	return le[n - 1];
}

/* ---- the executor ---------------------------------------------------------------- */

void
qs_agent_http_cfg_default(struct qs_agent_http_cfg *c)
{
	memset(c, 0, sizeof(*c));
	c->max_inflight = 64;
	c->max_queue = 4096;
	c->kv_high_pct = 95;
	c->kv_total = 1000;
	c->scrape_interval_ns = 100000000ull;
	c->timeout_ns = 600000000000ull;
	c->connect_timeout_ns = 2000000000ull;
	c->max_body = 64 * QS_GW_PKT_PAYLOAD;
}

enum job_state { J_FREE = 0, J_QUEUED, J_RUNNING };

struct srv;

struct job {
	enum job_state st;
	struct qs_agent_req req;
	uint8_t ep;
	char *body;
	size_t body_len;
	CURL *eh;
	struct curl_slist *hdrs;
	uint32_t seq;	 /* body chunks sent */
	uint32_t events; /* SSE data events seen */
	uint32_t usage;	 /* usage.completion_tokens, when the engine said */
	bool have_usage, saw_done;
	uint8_t line_match; /* progress through "data:" at a line start; 0xff: not at one */
	uint64_t first_ns;
	struct srv *srv;
};

/* a request's payload while its packets arrive */
struct asm_buf {
	bool used, overflow;
	uint64_t id;
	uint64_t first_ns;
	uint8_t *buf;
	size_t len;
};

struct srv {
	const struct qs_agent_http_cfg *h;
	uint16_t backend_id;
	int fd;
	CURLM *multi;
	struct job *jobs;
	uint32_t n_jobs, queued, inflight;
	uint64_t queued_tokens;
	struct asm_buf *asm_tab;
	uint32_t n_asm;
	uint64_t asm_age_ns;
	struct qs_agent_http_stats *st;
	/* scraping */
	CURL *scrape;
	char *scrape_buf;
	size_t scrape_len;
	bool scrape_overflow;
	struct qs_engine_metrics cur, prev;
	bool have_prev;
	uint64_t prev_scrape_ns, cur_scrape_ns;
	double engine_ttft_p99_s, engine_tps;
	uint32_t scrape_fail_run;
	/* own first-token times, for reports when the engine publishes no TTFT
	 * histogram (ttft_window.h: the same figure as the model executor's) */
	struct qs_ttft_window ttft;
	char url_comp[300], url_chat[300], url_metrics[300];
	uint64_t rx_now; /* the time of the burst being received */
};

static void
send_resp(struct srv *s, const struct job *j, uint8_t kind, uint16_t status, uint16_t flags,
	  uint32_t seq, const uint8_t *data, uint32_t len, const struct qs_agent_addr *to)
{
	struct qs_gw_resp g;
	uint8_t buf[QS_QRA_LEN + QS_GW_EXT_LEN + QS_GW_CHUNK_MAX];
	uint32_t n;
	uint64_t now = qs_agent_now_ns();

	memset(&g, 0, sizeof(g));
	g.r.kind = kind;
	g.r.backend_id = s->backend_id;
	g.r.request_id = j->req.id;
	g.r.tokens = j->have_usage ? j->usage : j->events;
	g.r.recv_ns = j->req.recv_ns;
	g.r.first_ns = j->first_ns;
	g.r.event_ns = now;
	g.seq = seq;
	g.status = status;
	g.flags = flags;
	g.data = data;
	g.len = len;
	n = qs_gw_resp_write(buf, &g);
	if (!to)
		to = &j->req.client;
	if (to->len == 0)
		return;
	if (sendto(s->fd, buf, n, 0, (const void *)to->b, to->len) < 0)
		s->st->send_errors++;
	else
		s->st->responses_sent++;
}

static void
job_free(struct srv *s, struct job *j)
{
	if (j->eh) {
		curl_multi_remove_handle(s->multi, j->eh);
		curl_easy_cleanup(j->eh); /* an unfinished transfer's connection is closed */
	}
	curl_slist_free_all(j->hdrs);
	free(j->body);
	if (j->st == J_QUEUED) {
		s->queued--;
		s->queued_tokens -= j->req.prompt_tokens;
	} else if (j->st == J_RUNNING) {
		s->inflight--;
	}
	memset(j, 0, sizeof(*j));
}

/* scan body bytes for SSE events and the usage count (approximate across chunk
 * boundaries: the count is the tokens field of the response, informative only) */
static void
scan_body(struct job *j, const char *p, size_t n)
{
	static const char pfx[] = "data:";
	const char *u;
	size_t i;

	for (i = 0; i < n; i++) {
		char c = p[i];

		if (c == '\n') {
			j->line_match = 0;
			continue;
		}
		if (j->line_match < 5) {
			if (c == pfx[j->line_match]) {
				if (++j->line_match == 5)
					j->events++;
			} else {
				j->line_match = 0xff;
			}
		}
	}
	if (memmem(p, n, "[DONE]", 6))
		j->saw_done = true;
	u = memmem(p, n, "\"completion_tokens\":", 20);
	if (u) {
		const char *v = u + 20, *e = p + n;
		uint32_t x = 0;
		bool any = false;

		while (v < e && *v == ' ')
			v++;
		while (v < e && *v >= '0' && *v <= '9' && x < 100000000u) {
			x = x * 10 + (uint32_t)(*v++ - '0');
			any = true;
		}
		if (any) {
			j->usage = x;
			j->have_usage = true;
		}
	}
}

static size_t
on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct job *j = ud;
	struct srv *s = j->srv;
	size_t n = sz * nm, off = 0;
	long code = 0;

	curl_easy_getinfo(j->eh, CURLINFO_RESPONSE_CODE, &code);
	if (j->seq == 0) {
		uint64_t now = qs_agent_now_ns();

		j->first_ns = now;
		qs_ttft_window_push(&s->ttft, now - j->req.recv_ns);
	}
	scan_body(j, p, n);
	while (off < n) {
		uint32_t c = (uint32_t)QS_RC_MIN(n - off, (size_t)QS_GW_CHUNK_MAX);

		send_resp(s, j, j->seq == 0 ? QS_QRA_K_FIRST : QS_GW_K_BODY, (uint16_t)code, 0,
			  j->seq, (const uint8_t *)p + off, c, NULL);
		j->seq++;
		off += c;
	}
	return n;
}

static int
job_start(struct srv *s, struct job *j)
{
	CURL *eh = curl_easy_init();
	char rid[64];

	if (!eh)
		return -1;
	snprintf(rid, sizeof(rid), "X-Request-Id: qsteer-%016llx", (unsigned long long)j->req.id);
	j->hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	j->hdrs = curl_slist_append(j->hdrs, "Expect:");
	j->hdrs = curl_slist_append(j->hdrs, rid);
	curl_easy_setopt(eh, CURLOPT_URL, j->ep == QS_GW_EP_CHAT ? s->url_chat : s->url_comp);
	curl_easy_setopt(eh, CURLOPT_POSTFIELDS, j->body);
	curl_easy_setopt(eh, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
	curl_easy_setopt(eh, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(eh, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(eh, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(eh, CURLOPT_PRIVATE, j);
	curl_easy_setopt(eh, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(eh, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(eh, CURLOPT_TIMEOUT_MS, (long)(s->h->timeout_ns / 1000000ull));
	curl_easy_setopt(eh, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(s->h->connect_timeout_ns / 1000000ull));
	j->eh = eh;
	j->srv = s;
	if (curl_multi_add_handle(s->multi, eh) != CURLM_OK)
		return -1;
	j->st = J_RUNNING;
	s->queued--;
	s->queued_tokens -= j->req.prompt_tokens;
	s->inflight++;
	return 0;
}

static void
job_error(struct srv *s, struct job *j, uint16_t status, const char *why)
{
	char b[512];
	int n;

	/* OpenAI's error object, so a client reads it as it would the engine's own */
	n = snprintf(b, sizeof(b),
		     "{\"error\":{\"message\":\"%s\",\"type\":\"engine_error\",\"param\":null,"
		     "\"code\":%u}}",
		     why, status);
	if (n < 0 || (size_t)n >= sizeof(b))
		n = (int)strlen(b);
	send_resp(s, j, QS_QRA_K_FIRST, status, 0, 0, (const uint8_t *)b, (uint32_t)n, NULL);
	j->seq = 1;
	send_resp(s, j, QS_QRA_K_DONE, status, 0, j->seq, NULL, 0, NULL);
}

static void
job_finished(struct srv *s, struct job *j, CURLcode res)
{
	long code = 0;

	curl_easy_getinfo(j->eh, CURLINFO_RESPONSE_CODE, &code);
	if (res == CURLE_OK) {
		if (j->seq == 0) { /* an empty body: one empty chunk carries the status */
			j->first_ns = qs_agent_now_ns();
			send_resp(s, j, QS_QRA_K_FIRST, (uint16_t)code, 0, 0, NULL, 0, NULL);
			j->seq = 1;
		}
		send_resp(s, j, QS_QRA_K_DONE, (uint16_t)code, 0, j->seq, NULL, 0, NULL);
		s->st->completed++;
	} else {
		char why[400];
		size_t i;

		s->st->engine_errors++;
		snprintf(why, sizeof(why), "engine %.256s: %.100s", s->h->engine,
			 curl_easy_strerror(res));
		for (i = 0; why[i]; i++)
			if (why[i] == '"' || why[i] == '\\')
				why[i] = '\'';
		if (j->seq == 0)
			job_error(s, j, res == CURLE_OPERATION_TIMEDOUT ? 504 : 502, why);
		else /* the stream ended early: the client has a status already */
			send_resp(s, j, QS_QRA_K_DONE, (uint16_t)(code ? code : 502),
				  QS_GW_RF_TRUNCATED, j->seq, NULL, 0, NULL);
	}
	job_free(s, j);
}

static struct job *
job_find(struct srv *s, uint64_t id)
{
	uint32_t i;

	for (i = 0; i < s->n_jobs; i++)
		if (s->jobs[i].st != J_FREE && s->jobs[i].req.id == id)
			return &s->jobs[i];
	return NULL;
}

static bool
engine_kv_high(const struct srv *s)
{
	return s->cur.ok && s->cur.have_kv && s->cur.kv_frac * 100.0 >= (double)s->h->kv_high_pct;
}

/* Admission: tightest SLO class, then highest priority, then oldest, while the
 * engine has room (the in-flight cap) and its KV cache is not nearly full; one
 * request always goes when none is in flight, so stale metrics cannot wedge it. */
static void
admit(struct srv *s)
{
	while (s->queued > 0 && s->inflight < s->h->max_inflight &&
	       (s->inflight == 0 || !engine_kv_high(s))) {
		struct job *best = NULL;
		uint32_t i;

		for (i = 0; i < s->n_jobs; i++) {
			struct job *j = &s->jobs[i];

			if (j->st != J_QUEUED)
				continue;
			if (!best || j->req.slo_class > best->req.slo_class ||
			    (j->req.slo_class == best->req.slo_class &&
			     (j->req.priority > best->req.priority ||
			      (j->req.priority == best->req.priority &&
			       j->req.recv_ns < best->req.recv_ns))))
				best = j;
		}
		if (!best)
			break;
		if (job_start(s, best)) {
			s->st->engine_errors++;
			job_error(s, best, 502, "cannot start a transfer to the engine");
			job_free(s, best);
		}
	}
}

static struct asm_buf *
asm_find(struct srv *s, uint64_t id)
{
	uint32_t i;

	for (i = 0; i < s->n_asm; i++)
		if (s->asm_tab[i].used && s->asm_tab[i].id == id)
			return &s->asm_tab[i];
	return NULL;
}

static void
asm_drop(struct asm_buf *b)
{
	free(b->buf);
	memset(b, 0, sizeof(*b));
}

static void
asm_add(struct srv *s, const uint8_t *p, uint32_t len, uint64_t now)
{
	struct qs_qrp_hdr h;
	struct asm_buf *b;
	uint32_t i, n;

	if (qs_qrp_parse_hdr(p, len, &h) != QS_QRP_OK)
		return;
	n = len - h.hdr_len;
	if (h.type == QS_QRP_T_REQUEST) {
		if (asm_find(s, h.request_id))
			return; /* a duplicate start: the intake drops it */
		for (i = 0; i < s->n_asm && s->asm_tab[i].used; i++)
			;
		if (i == s->n_asm)
			return; /* full: the request is refused when complete */
		b = &s->asm_tab[i];
		b->used = true;
		b->id = h.request_id;
		b->first_ns = now;
		b->buf = malloc(s->h->max_body + 1);
		if (!b->buf) {
			b->used = false;
			return;
		}
	} else if (h.type == QS_QRP_T_CONTINUATION) {
		b = asm_find(s, h.request_id);
		if (!b)
			return;
	} else {
		return;
	}
	if (b->len + n > s->h->max_body) {
		b->overflow = true;
		return;
	}
	memcpy(b->buf + b->len, p + h.hdr_len, n);
	b->len += n;
}

static void
asm_age(struct srv *s, uint64_t now)
{
	uint32_t i;

	for (i = 0; i < s->n_asm; i++)
		if (s->asm_tab[i].used && now - s->asm_tab[i].first_ns > s->asm_age_ns)
			asm_drop(&s->asm_tab[i]);
}

static void
on_request(struct srv *s, const struct qs_agent_req *r)
{
	struct asm_buf *b = asm_find(s, r->id);
	struct job tmp, *j = NULL;
	uint32_t i;
	uint16_t status = 0;

	s->st->requests++;
	memset(&tmp, 0, sizeof(tmp));
	tmp.req = *r;
	if (!b || b->overflow)
		status = 413;
	else if (b->len <= QS_GW_BODY_HDR || b->buf[0] != QS_GW_MAGIC_BODY ||
		 (b->buf[1] != QS_GW_EP_COMPLETIONS && b->buf[1] != QS_GW_EP_CHAT))
		status = 400;
	else if (job_find(s, r->id))
		status = 409;
	else if (s->queued >= s->h->max_queue)
		status = 503;
	for (i = 0; !status && i < s->n_jobs; i++)
		if (s->jobs[i].st == J_FREE) {
			j = &s->jobs[i];
			break;
		}
	if (!status && !j)
		status = 503;
	if (status) {
		s->st->rejected++;
		send_resp(s, &tmp, QS_QRA_K_REJECTED, status, 0, 0, NULL, 0, NULL);
		if (b)
			asm_drop(b);
		return;
	}
	*j = tmp;
	j->ep = b->buf[1];
	j->body_len = b->len - QS_GW_BODY_HDR;
	j->body = (char *)b->buf; /* the body moves to the job: shift it to the front */
	memmove(j->body, j->body + QS_GW_BODY_HDR, j->body_len);
	j->body[j->body_len] = '\0';
	b->buf = NULL;
	asm_drop(b);
	j->st = J_QUEUED;
	s->queued++;
	s->queued_tokens += r->prompt_tokens;
}

static void
on_cancel(struct srv *s, const struct qs_agent_req *c)
{
	struct job *j = job_find(s, c->id);
	struct job tmp;

	if (!j) {
		memset(&tmp, 0, sizeof(tmp));
		tmp.req = *c;
		send_resp(s, &tmp, QS_QRA_K_CANCEL_UNKNOWN, 0, 0, 0, NULL, 0, &c->client);
		return;
	}
	s->st->cancelled++;
	send_resp(s, j, QS_QRA_K_CANCELLED, 0, 0, j->seq, NULL, 0, &c->client);
	job_free(s, j); /* closes the engine's stream */
}

static size_t
on_scrape(char *p, size_t sz, size_t nm, void *ud)
{
	struct srv *s = ud;
	size_t n = sz * nm;

	if (s->scrape_len + n > SCRAPE_MAX) {
		s->scrape_overflow = true;
		return n;
	}
	memcpy(s->scrape_buf + s->scrape_len, p, n);
	s->scrape_len += n;
	return n;
}

static void
scrape_start(struct srv *s)
{
	CURL *eh = curl_easy_init();

	if (!eh)
		return;
	s->scrape_len = 0;
	s->scrape_overflow = false;
	curl_easy_setopt(eh, CURLOPT_URL, s->url_metrics);
	curl_easy_setopt(eh, CURLOPT_WRITEFUNCTION, on_scrape);
	curl_easy_setopt(eh, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(eh, CURLOPT_PRIVATE, NULL);
	curl_easy_setopt(eh, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(eh, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(eh, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	if (curl_multi_add_handle(s->multi, eh) != CURLM_OK) {
		curl_easy_cleanup(eh);
		return;
	}
	s->scrape = eh;
}

static void
scrape_done(struct srv *s, CURLcode res)
{
	long code = 0;
	uint64_t now = qs_agent_now_ns();

	curl_easy_getinfo(s->scrape, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(s->multi, s->scrape);
	curl_easy_cleanup(s->scrape);
	s->scrape = NULL;
	s->st->scrapes++;
	if (res != CURLE_OK || code != 200 || s->scrape_overflow) {
		s->st->scrape_errors++;
		s->scrape_fail_run++;
		s->cur.ok = false;
		return;
	}
	s->scrape_fail_run = 0;
	s->prev = s->cur;
	s->have_prev = s->prev.ok;
	s->prev_scrape_ns = s->cur_scrape_ns;
	qs_engine_metrics_parse(s->scrape_buf, s->scrape_len, &s->cur);
	s->cur_scrape_ns = now;
	if (s->have_prev) {
		double p99 = qs_engine_ttft_p99(&s->prev, &s->cur);
		double dt = (double)(s->cur_scrape_ns - s->prev_scrape_ns) / 1e9;

		if (p99 >= 0)
			s->engine_ttft_p99_s = p99;
		if (s->cur.gen_tps > 0)
			s->engine_tps = s->cur.gen_tps;
		else if (s->cur.have_gen && dt > 0 && s->cur.gen_tokens >= s->prev.gen_tokens)
			s->engine_tps = (s->cur.gen_tokens - s->prev.gen_tokens) / dt;
	}
}

/* The report: the engine's queue and KV state where it publishes them, the agent's
 * own admission queue on top, and the agent's own counters. */
static void
fill_report(struct srv *s, uint64_t now, struct qs_qrp_report *r)
{
	double kv = s->cur.ok && s->cur.have_kv ? s->cur.kv_frac : 0;

	memset(r, 0, sizeof(*r));
	r->backend_id = s->backend_id;
	if (s->h->scrape_interval_ns && s->scrape_fail_run >= DOWN_SCRAPES)
		r->flags = QS_QRP_RF_DRAINING;
	r->waiting = s->queued + (uint32_t)(s->cur.ok && s->cur.have_waiting ? s->cur.waiting : 0);
	r->running = s->cur.ok && s->cur.have_running ? (uint32_t)s->cur.running : s->inflight;
	r->kv_total = s->h->kv_total;
	r->kv_used = (uint32_t)(kv * s->h->kv_total + 0.5);
	r->decode_tps = (uint32_t)(s->engine_tps > 4e9 ? 4e9 : s->engine_tps);
	if (s->cur.ok && s->cur.have_ttft) {
		r->ttft_p99_us = (uint32_t)QS_RC_MIN(s->engine_ttft_p99_s * 1e6, 4e9);
	} else {
		r->ttft_p99_us = qs_ttft_window_max(&s->ttft);
	}
	r->prefill_pending = (uint32_t)QS_RC_MIN(s->queued_tokens, 0xffffffffull);
	r->received = s->st->requests;
	r->completed = s->st->completed;
	r->sent_ns = now;
}

static void
drain_multi(struct srv *s)
{
	CURLMsg *m;
	int left;

	while ((m = curl_multi_info_read(s->multi, &left)) != NULL) {
		struct job *j = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		if (m->easy_handle == s->scrape) {
			scrape_done(s, m->data.result);
			continue;
		}
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
		if (j)
			job_finished(s, j, m->data.result);
	}
}

static int
write_port_file(const char *path, int port, char *msg, size_t msglen)
{
	char tmp[300];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) || rename(tmp, path)) {
		snprintf(msg, msglen, "port file %s: %s", path, strerror(errno));
		return QS_E_IO;
	}
	return QS_OK;
}

/* Each datagram in: the engine's request body is assembled from the raw packets
 * (asm_add) before the intake's verdict acts on it. */
static void
http_in(void *ctx, int verdict, struct qs_agent_req *req, const uint8_t *dgram, uint32_t len)
{
	struct srv *s = ctx;

	s->st->datagrams++;
	asm_add(s, dgram, len, s->rx_now);
	if (verdict == QS_AGENT_IN_REQUEST)
		on_request(s, req);
	else if (verdict == QS_AGENT_IN_CANCEL)
		on_cancel(s, req);
}

int
qs_agent_http_serve(const struct qs_agent_http_cfg *h, const struct qs_agent_cfg *acfg,
		    const struct qs_agent_intake_cfg *icfg, struct qs_agent_serve_cfg *c,
		    struct qs_agent_http_stats *st, char *msg, size_t msglen)
{
	static struct srv s; /* one executor per process; large tables */
	struct qs_agent_addr lis, rep[QS_AGENT_MAX_REPORT_TO];
	static struct qs_agent_rx rx; /* large */
	struct qs_agent_intake *in = NULL;
	struct qs_qrp_report r;
	uint64_t start, now, next_report, next_scrape, rep_seq;
	int rc = QS_OK;
	uint32_t i;

	memset(st, 0, sizeof(*st));
	memset(&s, 0, sizeof(s));
	s.fd = -1;
	s.h = h;
	s.st = st;
	s.backend_id = acfg->backend_id;
	if (strncmp(h->engine, "http://", 7) || strlen(h->engine) > 250 || !h->max_inflight ||
	    !h->max_queue || !h->kv_total || h->kv_high_pct > 100 || !h->max_body ||
	    c->n_report_to > QS_AGENT_MAX_REPORT_TO || c->report_interval_ns == 0) {
		snprintf(msg, msglen,
			 "http executor: bad configuration (engine '%s': want "
			 "http://HOST:PORT; caps and intervals nonzero)",
			 h->engine);
		return QS_E_ARG;
	}
	{
		size_t el = strlen(h->engine);

		while (el > 7 && h->engine[el - 1] == '/')
			el--;
		snprintf(s.url_comp, sizeof(s.url_comp), "%.*s/v1/completions", (int)el, h->engine);
		snprintf(s.url_chat, sizeof(s.url_chat), "%.*s/v1/chat/completions", (int)el,
			 h->engine);
		snprintf(s.url_metrics, sizeof(s.url_metrics), "%.*s/metrics", (int)el, h->engine);
	}
	rc = qs_agent_addr_parse(c->listen, QS_QRP_PORT, &lis, msg, msglen);
	for (i = 0; rc == QS_OK && i < c->n_report_to; i++)
		rc = qs_agent_addr_parse(c->report_to[i], QS_QRP_REPORT_PORT, &rep[i], msg, msglen);
	if (rc != QS_OK)
		return rc;
	rc = qs_agent_intake_create(icfg, &in, msg, msglen);
	if (rc != QS_OK)
		return rc;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		snprintf(msg, msglen, "http executor: curl_global_init failed");
		rc = QS_E_IO;
		goto out;
	}
	s.n_jobs = h->max_inflight + h->max_queue;
	s.n_asm = icfg->table_size;
	s.asm_age_ns = icfg->max_age_ns;
	s.jobs = calloc(s.n_jobs, sizeof(*s.jobs));
	s.asm_tab = calloc(s.n_asm, sizeof(*s.asm_tab));
	s.scrape_buf = malloc(SCRAPE_MAX);
	s.multi = curl_multi_init();
	if (!s.jobs || !s.asm_tab || !s.scrape_buf || !s.multi) {
		snprintf(msg, msglen, "http executor: out of memory");
		rc = QS_E_NOMEM;
		goto out;
	}
	curl_multi_setopt(s.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->max_inflight + 1);
	s.fd = qs_agent_udp_listen(&lis, c->listen, "http executor", &c->bound_port, msg, msglen);
	if (s.fd < 0) {
		rc = QS_E_IO;
		goto out;
	}
	if (h->port_file[0]) {
		rc = write_port_file(h->port_file, c->bound_port, msg, msglen);
		if (rc != QS_OK)
			goto out;
	}
	if (c->ready)
		*c->ready = 1;
	rep_seq = qs_agent_udp_report_seq0(&c->report_key);
	qs_agent_rx_init(&rx);
	start = qs_agent_now_ns();
	next_report = start + c->report_interval_ns;
	next_scrape = start;
	for (;;) {
		struct curl_waitfd wfd = {s.fd, CURL_WAIT_POLLIN, 0};
		uint64_t wake;
		int n, running;

		now = qs_agent_now_ns();
		if ((c->stop && *c->stop) || (c->max_run_ns && now - start >= c->max_run_ns))
			break;
		s.rx_now = now;
		n = qs_agent_rx_burst(&rx, s.fd, in, now, http_in, &s);
		qs_agent_intake_age(in, now);
		asm_age(&s, now);
		admit(&s);
		curl_multi_perform(s.multi, &running);
		drain_multi(&s);
		admit(&s);
		now = qs_agent_now_ns();
		if (h->scrape_interval_ns && !s.scrape && now >= next_scrape) {
			scrape_start(&s);
			next_scrape = now + h->scrape_interval_ns;
		}
		if (now >= next_report) {
			fill_report(&s, now, &r);
			qs_agent_udp_report(s.fd, rep, c->n_report_to, &r, rep_seq, &c->report_key,
					    &st->reports_sent, &st->send_errors);
			rep_seq++;
			next_report += c->report_interval_ns;
			if (next_report <= now)
				next_report = now + c->report_interval_ns;
		}
		if (n > 0)
			continue; /* more may be waiting */
		wake = next_report;
		if (h->scrape_interval_ns && !s.scrape && next_scrape < wake)
			wake = next_scrape;
		now = qs_agent_now_ns();
		curl_multi_poll(
		    s.multi, &wfd, 1,
		    wake > now ? (int)QS_RC_MIN((wake - now) / 1000000ull + 1, 1000ull) : 0, NULL);
	}
out:
	for (i = 0; s.jobs && i < s.n_jobs; i++)
		if (s.jobs[i].st != J_FREE)
			job_free(&s, &s.jobs[i]);
	for (i = 0; s.asm_tab && i < s.n_asm; i++)
		if (s.asm_tab[i].used)
			asm_drop(&s.asm_tab[i]);
	if (s.scrape) {
		curl_multi_remove_handle(s.multi, s.scrape);
		curl_easy_cleanup(s.scrape);
	}
	if (s.multi)
		curl_multi_cleanup(s.multi);
	if (in)
		st->dropped = qs_agent_intake_stats(in)->dropped;
	qs_agent_intake_destroy(in);
	free(s.jobs);
	free(s.asm_tab);
	free(s.scrape_buf);
	if (s.fd >= 0)
		close(s.fd);
	curl_global_cleanup();
	return rc;
}
