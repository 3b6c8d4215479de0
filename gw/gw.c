/*
 * gw.c - qsteer-gw: the HTTP ingress (issue 18). OpenAI-compatible requests in
 * (POST /v1/completions and /v1/chat/completions, streaming SSE or not), QRP out
 * to the dataplane's service address, the agent's response datagrams in (direct
 * server return to this request's own UDP socket), the engine's body back to the
 * client. include/qsteer/agent_http.h has the wire extension, docs/deploy.md the
 * prose, docs/man/qsteer-gw.txt the page.
 *
 * libmicrohttpd runs a thread per connection, so a request waits for its
 * datagrams in its own thread: poll() on its UDP socket and on the client's TCP
 * socket, so that a client that goes away is noticed at once and its request is
 * cancelled (QRP type 4) at the agent, which closes the engine's stream. Many
 * gateways can run side by side: request ids start at a random 24-bit prefix.
 *
 * Prompt tokens are estimated from bytes: ceil(bytes / 4) of the prompt's text
 * (chat: every message's content, plus 4 per message), at least 1. The prefix
 * hash is CRC32C of the prompt text's first QS_GW_PREFIX_BYTES bytes, with the low
 * bit set so that it is never 0 ("no prefix"), as the simulator's workloads keep
 * theirs odd (sim/workload.c). Requests with the same opening text hash alike.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <jansson.h>
#include <microhttpd.h>

#include "qsteer/agent_http.h"
#include "qsteer/clock.h"
#include "qsteer/crc32c.h"
#include "qsteer/opt.h"
#include "qsteer/quality.h"

#define QS_GW_PREFIX_BYTES 256
#define QS_GW_MAX_PACKETS  64
#define CANCEL_TRIES	   3

struct gw_cfg {
	char listen[128];
	char service[128];
	char port_file[256];
	uint32_t default_max_tokens;
	uint32_t max_body;
	uint32_t conn_limit;
	uint64_t timeout_ms;	   /* a whole request */
	uint64_t first_timeout_ms; /* no answer at all from the agent */
	uint16_t tenant;
};

static struct gw_cfg g_cfg;
static struct sockaddr_storage g_svc;
static socklen_t g_svc_len;
static atomic_uint_fast64_t g_next_id;

/* what /metrics counts */
static atomic_uint_fast64_t m_requests[3], m_status[6], m_cancels, m_inflight, m_timeouts,
    m_rejected, m_bad;

/* ---- OpenAI-style errors ---------------------------------------------------------- */

static enum MHD_Result
respond(struct MHD_Connection *c, unsigned status, const char *ctype, const void *body, size_t len)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
	enum MHD_Result rc;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	atomic_fetch_add(&m_status[status / 100 <= 5 ? status / 100 : 0], 1);
	return rc;
}

static const char *
err_type(unsigned status)
{
	switch (status) {
	case 400:
	case 404:
	case 405:
	case 413:
	case 415:
		return "invalid_request_error";
	case 503:
		return "overloaded_error";
	case 504:
		return "timeout_error";
	default:
		return "server_error";
	}
}

static enum MHD_Result respond_error(struct MHD_Connection *c, unsigned status, const char *param,
				     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static enum MHD_Result
respond_error(struct MHD_Connection *c, unsigned status, const char *param, const char *fmt, ...)
{
	char m[512];
	va_list ap;
	json_t *o;
	char *s;
	enum MHD_Result rc;

	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	o = json_pack("{s:{s:s,s:s,s:o,s:i}}", "error", "message", m, "type", err_type(status),
		      "param", param ? json_string(param) : json_null(), "code", (int)status);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		return MHD_NO;
	rc = respond(c, status, "application/json", s, strlen(s));
	free(s);
	return rc;
}

/* ---- the request's QRP side --------------------------------------------------------- */

struct chunk {
	uint8_t *data;
	uint32_t len;
	bool have;
};

/* One request in flight: its socket, what has come back, what went out to the client. */
struct flight {
	int fd;
	int client_fd;
	uint64_t id;
	uint16_t tenant;
	uint64_t deadline_ms, first_deadline_ms;
	bool got_first, done, rejected, truncated, finished, cancelled, client_gone;
	uint16_t status;
	uint32_t total; /* DONE: the chunk count */
	struct chunk *ch;
	uint32_t n_ch, cap_ch;
	uint32_t next;	   /* first chunk not yet handed to the client */
	uint32_t next_off; /* bytes of it already handed */
	bool stream;
	bool trailer_sent;
};

static void
flight_free(struct flight *f)
{
	uint32_t i;

	for (i = 0; i < f->n_ch; i++)
		free(f->ch[i].data);
	free(f->ch);
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

static int
store_chunk(struct flight *f, const struct qs_gw_resp *g)
{
	if (g->seq >= (1u << 20))
		return -1;
	if (g->seq >= f->cap_ch) {
		uint32_t cap = f->cap_ch ? f->cap_ch : 16;
		struct chunk *n;

		while (cap <= g->seq)
			cap *= 2;
		n = realloc(f->ch, cap * sizeof(*n));
		if (!n)
			return -1;
		memset(n + f->cap_ch, 0, (cap - f->cap_ch) * sizeof(*n));
		f->ch = n;
		f->cap_ch = cap;
	}
	if (g->seq + 1 > f->n_ch)
		f->n_ch = g->seq + 1;
	if (f->ch[g->seq].have)
		return 0; /* a duplicate */
	f->ch[g->seq].data = malloc(g->len ? g->len : 1);
	if (!f->ch[g->seq].data)
		return -1;
	memcpy(f->ch[g->seq].data, g->data, g->len);
	f->ch[g->seq].len = g->len;
	f->ch[g->seq].have = true;
	return 0;
}

static bool
all_in(const struct flight *f)
{
	uint32_t i;

	if (!f->done)
		return false;
	for (i = 0; i < f->total; i++)
		if (i >= f->n_ch || !f->ch[i].have)
			return false;
	return true;
}

static void
send_cancel(struct flight *f)
{
	struct qs_qrp_hdr h;
	uint8_t b[QS_QRP_HDR_LEN];

	memset(&h, 0, sizeof(h));
	h.type = QS_QRP_T_CANCEL;
	h.flags = QS_QRP_F_LAST;
	h.tenant = f->tenant;
	h.request_id = f->id;
	qs_qrp_write_hdr(b, &h);
	(void)sendto(f->fd, b, sizeof(b), 0, (const void *)&g_svc, g_svc_len);
}

/* Receive what has arrived, waiting up to wait_ms. -1: the client went away. */
static int
pump(struct flight *f, int wait_ms)
{
	struct pollfd p[2] = {{f->fd, POLLIN, 0}, {f->client_fd, POLLRDHUP, 0}};
	uint8_t buf[2048];
	int np = f->client_fd >= 0 ? 2 : 1;

	if (poll(p, (nfds_t)np, wait_ms) < 0 && errno != EINTR)
		return 0;
	if (np == 2 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR))) {
		f->client_gone = true;
		return -1;
	}
	for (;;) {
		struct qs_gw_resp g;
		ssize_t n = recv(f->fd, buf, sizeof(buf), MSG_DONTWAIT);

		if (n < 0)
			break;
		if (qs_gw_resp_parse(buf, (uint32_t)n, &g) != QS_QRP_OK || g.r.request_id != f->id)
			continue;
		switch (g.r.kind) {
		case QS_QRA_K_FIRST:
		case QS_GW_K_BODY:
			if (g.r.kind == QS_QRA_K_FIRST) {
				f->got_first = true;
				f->status = g.status;
			}
			if (store_chunk(f, &g))
				f->truncated = f->done = true;
			break;
		case QS_QRA_K_DONE:
			f->done = true;
			f->total = g.seq;
			if (!f->got_first)
				f->status = g.status;
			if (g.flags & QS_GW_RF_TRUNCATED)
				f->truncated = true;
			break;
		case QS_QRA_K_REJECTED:
			f->rejected = f->done = true;
			f->status = g.status;
			break;
		case QS_QRA_K_CANCELLED:
		case QS_QRA_K_CANCEL_UNKNOWN:
			f->cancelled = true;
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Cancel at the agent: a few tries, each waiting briefly for the acknowledgement. */
static void
cancel_flight(struct flight *f)
{
	int i, fd = f->client_fd;

	atomic_fetch_add(&m_cancels, 1);
	f->client_fd = -1;
	for (i = 0; i < CANCEL_TRIES && !f->cancelled; i++) {
		uint64_t until = qs_mono_ms() + 200;

		send_cancel(f);
		while (!f->cancelled && qs_mono_ms() < until)
			pump(f, 50);
	}
	f->client_fd = fd;
}

/* Send the request: the body extension's 4 bytes and the JSON body over as many
 * QRP packets as it takes, the last one flagged. */
static int
send_request(struct flight *f, const struct qs_qrp_hdr *h0, uint8_t ep, const char *body,
	     size_t len)
{
	size_t total = QS_GW_BODY_HDR + len, off = 0;
	uint8_t pkt[QS_QRP_HDR_LEN + QS_GW_PKT_PAYLOAD];
	uint32_t k = 0;

	while (off < total || k == 0) {
		struct qs_qrp_hdr h = *h0;
		size_t n = QS_RC_MIN(total - off, (size_t)QS_GW_PKT_PAYLOAD), i;

		h.type = k == 0 ? QS_QRP_T_REQUEST : QS_QRP_T_CONTINUATION;
		h.flags = off + n >= total ? QS_QRP_F_LAST : 0;
		if (k == 0) /* a difficulty belongs to the request's first packet (wire.h) */
			h.flags |= h0->flags & (QS_QRP_F_DIFFICULTY | QS_QRP_F_DIFF_MASK);
		qs_qrp_write_hdr(pkt, &h);
		for (i = 0; i < n; i++) {
			size_t at = off + i;

			pkt[QS_QRP_HDR_LEN + i] = at == 0   ? QS_GW_MAGIC_BODY
						  : at == 1 ? ep
						  : at < 4  ? 0
							    : (uint8_t)body[at - QS_GW_BODY_HDR];
		}
		if (sendto(f->fd, pkt, QS_QRP_HDR_LEN + n, 0, (const void *)&g_svc, g_svc_len) < 0)
			return -1;
		off += n;
		k++;
	}
	return 0;
}

/* ---- streaming ---------------------------------------------------------------------- */

static ssize_t
stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct flight *f = cls;

	(void)pos;
	for (;;) {
		uint64_t t = qs_mono_ms();

		/* hand over what is contiguous */
		if (f->next < f->n_ch && f->ch[f->next].have) {
			struct chunk *c = &f->ch[f->next];
			size_t n = QS_RC_MIN((size_t)(c->len - f->next_off), max);

			memcpy(buf, c->data + f->next_off, n);
			f->next_off += (uint32_t)n;
			if (f->next_off == c->len) {
				f->next++;
				f->next_off = 0;
			}
			if (n)
				return (ssize_t)n;
			continue;
		}
		if (f->done && (f->truncated || f->next >= f->total)) {
			if (f->truncated && !f->trailer_sent) {
				static const char tr[] =
				    "data: {\"error\":{\"message\":\"the engine's stream ended "
				    "early\",\"type\":\"server_error\",\"param\":null,"
				    "\"code\":502}}\n\n";

				f->trailer_sent = true;
				if (max >= sizeof(tr) - 1) {
					memcpy(buf, tr, sizeof(tr) - 1);
					return (ssize_t)(sizeof(tr) - 1);
				}
			}
			f->finished = true;
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (t >= f->deadline_ms) {
			atomic_fetch_add(&m_timeouts, 1);
			cancel_flight(f);
			f->finished = true;
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
		if (pump(f, (int)QS_RC_MIN(f->deadline_ms - t, 250ull)) < 0) {
			cancel_flight(f);
			f->finished = true;
			return MHD_CONTENT_READER_END_WITH_ERROR;
		}
	}
}

static void
stream_free(void *cls)
{
	struct flight *f = cls;

	if (!f->finished) /* the client went away while MHD was writing */
		cancel_flight(f);
	atomic_fetch_sub(&m_inflight, 1);
	flight_free(f);
}

/* ---- requests ------------------------------------------------------------------------ */

struct upload {
	char *body;
	size_t len, cap;
	bool too_big;
};

/* the prompt's text for the token estimate and the prefix hash */
static int
prompt_text(json_t *req, uint8_t ep, char *pfx, size_t *pfx_len, uint64_t *bytes, uint32_t *extra,
	    const char **param, const char **why)
{
	size_t i;
	json_t *v;

	*pfx_len = 0;
	*bytes = 0;
	*extra = 0;
#define TAKE(s, n)                                                                                 \
	do {                                                                                       \
		size_t _n = (n), _k = QS_RC_MIN(_n, QS_GW_PREFIX_BYTES - *pfx_len);                \
		memcpy(pfx + *pfx_len, (s), _k);                                                   \
		*pfx_len += _k;                                                                    \
		*bytes += _n;                                                                      \
	} while (0)
	if (ep == QS_GW_EP_COMPLETIONS) {
		json_t *p = json_object_get(req, "prompt");

		*param = "prompt";
		if (json_is_string(p)) {
			TAKE(json_string_value(p), json_string_length(p));
		} else if (json_is_array(p) && json_array_size(p) > 0) {
			json_array_foreach(p, i, v)
			{
				if (json_is_string(v))
					TAKE(json_string_value(v), json_string_length(v));
				else if (json_is_integer(v))
					*extra += 1; /* token ids: one token each */
				else {
					*why = "'prompt' must be a string, an array of strings or "
					       "an array of token ids";
					return -1;
				}
			}
		} else {
			*why = "'prompt' is required: a string or a non-empty array";
			return -1;
		}
		return 0;
	}
	*param = "messages";
	v = json_object_get(req, "messages");
	if (!json_is_array(v) || json_array_size(v) == 0) {
		*why = "'messages' is required: a non-empty array of message objects";
		return -1;
	}
	{
		json_t *m;

		json_array_foreach(v, i, m)
		{
			json_t *role = json_object_get(m, "role"),
			       *c = json_object_get(m, "content");
			size_t k;
			json_t *part;

			if (!json_is_object(m) || !json_is_string(role)) {
				*why = "each message needs a string 'role'";
				return -1;
			}
			*extra += 4;
			TAKE(json_string_value(role), json_string_length(role));
			if (json_is_string(c)) {
				TAKE(json_string_value(c), json_string_length(c));
			} else if (json_is_array(c)) {
				json_array_foreach(c, k, part)
				{
					json_t *t = json_object_get(part, "text");

					if (json_is_string(t))
						TAKE(json_string_value(t), json_string_length(t));
				}
			} else if (!json_is_null(c) && c) {
				*why =
				    "a message's 'content' must be a string, an array of parts or "
				    "null";
				return -1;
			}
		}
	}
#undef TAKE
	return 0;
}

static uint8_t
hdr_u8(struct MHD_Connection *c, const char *name, uint8_t dflt, uint8_t max, bool *bad)
{
	const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
	char *e;
	unsigned long x;

	if (!v)
		return dflt;
	x = strtoul(v, &e, 10);
	if (!*v || *e || x > max) {
		*bad = true;
		return dflt;
	}
	return (uint8_t)x;
}

static enum MHD_Result
handle(struct MHD_Connection *c, uint8_t ep, const char *body, size_t len)
{
	json_error_t je;
	json_t *req = json_loadb(body, len, 0, &je), *v;
	const char *param = NULL, *why = NULL;
	char pfx[QS_GW_PREFIX_BYTES];
	size_t pfx_len;
	uint64_t bytes;
	uint32_t extra, max_new;
	bool stream = false, bad_hdr = false;
	struct qs_qrp_hdr h;
	struct flight *f;
	const union MHD_ConnectionInfo *ci;
	enum MHD_Result rc;
	const char *tenant_s;

	atomic_fetch_add(&m_requests[ep], 1);
	if (!req) {
		atomic_fetch_add(&m_bad, 1);
		return respond_error(c, 400, NULL,
				     "the body is not valid JSON: %s (line %d, "
				     "column %d)",
				     je.text, je.line, je.column);
	}
	if (!json_is_object(req)) {
		json_decref(req);
		atomic_fetch_add(&m_bad, 1);
		return respond_error(c, 400, NULL, "the body must be a JSON object");
	}
	v = json_object_get(req, "stream");
	if (v && !json_is_boolean(v) && !json_is_null(v)) {
		json_decref(req);
		atomic_fetch_add(&m_bad, 1);
		return respond_error(c, 400, "stream", "'stream' must be a boolean");
	}
	stream = json_is_true(v);
	max_new = g_cfg.default_max_tokens;
	v = json_object_get(req,
			    ep == QS_GW_EP_CHAT && json_object_get(req, "max_completion_tokens")
				? "max_completion_tokens"
				: "max_tokens");
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > 65536) {
			json_decref(req);
			atomic_fetch_add(&m_bad, 1);
			return respond_error(c, 400, "max_tokens",
					     "'max_tokens' must be an integer in 1..65536");
		}
		max_new = (uint32_t)json_integer_value(v);
	}
	v = json_object_get(req, "model");
	if (v && !json_is_string(v)) {
		json_decref(req);
		atomic_fetch_add(&m_bad, 1);
		return respond_error(c, 400, "model", "'model' must be a string");
	}
	if (prompt_text(req, ep, pfx, &pfx_len, &bytes, &extra, &param, &why)) {
		json_decref(req);
		atomic_fetch_add(&m_bad, 1);
		return respond_error(c, 400, param, "%s", why);
	}
	json_decref(req);

	memset(&h, 0, sizeof(h));
	h.tenant = g_cfg.tenant;
	tenant_s = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-QSteer-Tenant");
	if (tenant_s) {
		char *e;
		unsigned long t = strtoul(tenant_s, &e, 10);

		if (!*tenant_s || *e || t > 65535)
			bad_hdr = true;
		else
			h.tenant = (uint16_t)t;
	}
	h.priority = hdr_u8(c, "X-QSteer-Priority", 0, 3, &bad_hdr);
	h.slo_class = hdr_u8(c, "X-QSteer-SLO-Class", 0, 3, &bad_hdr);
	/* cascade routing: how hard the client says the request is (docs/wire.md); without
	 * it the dataplane estimates from the prompt length, or takes the hardest */
	if (MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-QSteer-Difficulty"))
		h.flags = qs_qrp_difficulty_flags(
		    hdr_u8(c, "X-QSteer-Difficulty", 0, QS_DIFFICULTIES - 1, &bad_hdr));
	if (bad_hdr) {
		atomic_fetch_add(&m_bad, 1);
		return respond_error(
		    c, 400, NULL,
		    "X-QSteer-Tenant must be 0..65535, "
		    "X-QSteer-Priority, X-QSteer-SLO-Class and X-QSteer-Difficulty "
		    "0..3");
	}
	h.prompt_tokens = (uint32_t)QS_RC_MIN((bytes + 3) / 4 + extra, 1ull << 20);
	if (h.prompt_tokens == 0)
		h.prompt_tokens = 1;
	h.max_new_tokens = max_new;
	h.prefix_hash = pfx_len ? (qs_crc32c(0, pfx, pfx_len) | 1u) : 0;
	h.request_id = atomic_fetch_add(&g_next_id, 1);

	f = calloc(1, sizeof(*f));
	if (!f)
		return respond_error(c, 500, NULL, "out of memory");
	f->id = h.request_id;
	f->tenant = h.tenant;
	f->stream = stream;
	f->fd = socket(g_svc.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	f->client_fd = ci ? ci->connect_fd : -1;
	f->first_deadline_ms = qs_mono_ms() + g_cfg.first_timeout_ms;
	f->deadline_ms = qs_mono_ms() + g_cfg.timeout_ms;
	if (f->fd < 0 || send_request(f, &h, ep, body, len)) {
		flight_free(f);
		return respond_error(c, 502, NULL, "cannot send to the service address %s: %s",
				     g_cfg.service, strerror(errno));
	}
	atomic_fetch_add(&m_inflight, 1);
	/* Wait for the status (streaming) or the whole body. */
	for (;;) {
		uint64_t t = qs_mono_ms();
		uint64_t dl =
		    f->got_first ? f->deadline_ms : QS_RC_MIN(f->first_deadline_ms, f->deadline_ms);

		if (f->rejected || (f->done && (f->truncated || all_in(f))))
			break;
		if (stream && f->got_first && f->status == 200)
			break;
		if (t >= dl) {
			bool first = f->got_first;

			atomic_fetch_add(&m_timeouts, 1);
			cancel_flight(f);
			atomic_fetch_sub(&m_inflight, 1);
			flight_free(f);
			return respond_error(c, 504, NULL, "no %s from the backend in time",
					     first ? "complete response" : "response");
		}
		if (pump(f, (int)QS_RC_MIN(dl - t, 250ull)) < 0) {
			cancel_flight(f);
			atomic_fetch_sub(&m_inflight, 1);
			flight_free(f);
			return MHD_NO; /* the client is gone: close */
		}
	}
	if (f->rejected) {
		unsigned st = f->status ? f->status : 503;

		atomic_fetch_add(&m_rejected, 1);
		atomic_fetch_sub(&m_inflight, 1);
		flight_free(f);
		return respond_error(c, st, NULL, "the backend refused the request (%s)",
				     st == 503	 ? "its queue is full"
				     : st == 413 ? "the body is too large"
						 : "malformed");
	}
	if (stream && f->status == 200) {
		struct MHD_Response *r = MHD_create_response_from_callback(
		    MHD_SIZE_UNKNOWN, 4096, stream_reader, f, stream_free);

		if (!r) {
			atomic_fetch_sub(&m_inflight, 1);
			cancel_flight(f);
			flight_free(f);
			return MHD_NO;
		}
		MHD_add_response_header(r, "Content-Type", "text/event-stream");
		MHD_add_response_header(r, "Cache-Control", "no-cache");
		rc = MHD_queue_response(c, 200, r);
		MHD_destroy_response(r);
		atomic_fetch_add(&m_status[2], 1);
		return rc;
	}
	atomic_fetch_sub(&m_inflight, 1);
	if (f->truncated) {
		flight_free(f);
		return respond_error(c, 502, NULL, "the engine's response ended early");
	}
	{
		size_t n = 0, k = 0;
		uint32_t i;
		char *out;

		for (i = 0; i < f->total; i++)
			n += f->ch[i].len;
		out = malloc(n + 1);
		if (!out) {
			flight_free(f);
			return respond_error(c, 500, NULL, "out of memory");
		}
		for (i = 0; i < f->total; i++) {
			memcpy(out + k, f->ch[i].data, f->ch[i].len);
			k += f->ch[i].len;
		}
		rc = respond(c, f->status ? f->status : 502,
			     n && out[0] == 'd' ? "text/event-stream" : "application/json", out, n);
		free(out);
	}
	flight_free(f);
	return rc;
}

static enum MHD_Result
metrics(struct MHD_Connection *c)
{
	char b[2048];
	int n = snprintf(b, sizeof(b),
			 "# HELP qsteer_gw_requests_total HTTP requests by endpoint.\n"
			 "# TYPE qsteer_gw_requests_total counter\n"
			 "qsteer_gw_requests_total{endpoint=\"completions\"} %llu\n"
			 "qsteer_gw_requests_total{endpoint=\"chat\"} %llu\n"
			 "# HELP qsteer_gw_responses_total Responses by status class.\n"
			 "# TYPE qsteer_gw_responses_total counter\n"
			 "qsteer_gw_responses_total{code=\"2xx\"} %llu\n"
			 "qsteer_gw_responses_total{code=\"4xx\"} %llu\n"
			 "qsteer_gw_responses_total{code=\"5xx\"} %llu\n"
			 "# TYPE qsteer_gw_bad_requests_total counter\n"
			 "qsteer_gw_bad_requests_total %llu\n"
			 "# TYPE qsteer_gw_rejected_total counter\n"
			 "qsteer_gw_rejected_total %llu\n"
			 "# TYPE qsteer_gw_timeouts_total counter\n"
			 "qsteer_gw_timeouts_total %llu\n"
			 "# TYPE qsteer_gw_cancels_total counter\n"
			 "qsteer_gw_cancels_total %llu\n"
			 "# TYPE qsteer_gw_inflight gauge\n"
			 "qsteer_gw_inflight %llu\n",
			 (unsigned long long)m_requests[1], (unsigned long long)m_requests[2],
			 (unsigned long long)m_status[2], (unsigned long long)m_status[4],
			 (unsigned long long)m_status[5], (unsigned long long)m_bad,
			 (unsigned long long)m_rejected, (unsigned long long)m_timeouts,
			 (unsigned long long)m_cancels, (unsigned long long)m_inflight);

	return respond(c, 200, "text/plain; version=0.0.4", b, (size_t)n);
}

static enum MHD_Result
on_access(void *cls, struct MHD_Connection *c, const char *url, const char *method,
	  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
	struct upload *u = *con_cls;
	uint8_t ep = !strcmp(url, "/v1/completions")	    ? QS_GW_EP_COMPLETIONS
		     : !strcmp(url, "/v1/chat/completions") ? QS_GW_EP_CHAT
							    : 0;

	(void)cls;
	(void)version;
	if (!u) {
		u = calloc(1, sizeof(*u));
		if (!u)
			return MHD_NO;
		*con_cls = u;
		if (strcmp(method, "POST"))
			return MHD_YES; /* answered below, without a body */
		return MHD_YES;
	}
	if (*upload_size) {
		if (!u->too_big) {
			if (u->len + *upload_size > g_cfg.max_body) {
				u->too_big = true;
			} else {
				if (u->len + *upload_size > u->cap) {
					size_t cap = QS_RC_MAX(u->cap * 2, u->len + *upload_size);
					char *nb = realloc(u->body, cap);

					if (!nb)
						return MHD_NO;
					u->body = nb;
					u->cap = cap;
				}
				memcpy(u->body + u->len, upload, *upload_size);
				u->len += *upload_size;
			}
		}
		*upload_size = 0;
		return MHD_YES;
	}
	if (!strcmp(method, "GET") && !strcmp(url, "/metrics"))
		return metrics(c);
	if (!strcmp(method, "GET") && !strcmp(url, "/healthz"))
		return respond(c, 200, "text/plain", "ok\n", 3);
	if (!ep) {
		atomic_fetch_add(&m_bad, 1);
		return respond_error(c, 404, NULL,
				     "no such endpoint '%s' (POST /v1/completions "
				     "or /v1/chat/completions)",
				     url);
	}
	if (strcmp(method, "POST")) {
		atomic_fetch_add(&m_bad, 1);
		return respond_error(c, 405, NULL, "%s: method %s not allowed (POST)", url, method);
	}
	if (u->too_big) {
		atomic_fetch_add(&m_bad, 1);
		return respond_error(c, 413, NULL, "the body is larger than %u bytes",
				     g_cfg.max_body);
	}
	if (u->len == 0) {
		atomic_fetch_add(&m_bad, 1);
		return respond_error(c, 400, NULL, "the body is empty (a JSON object expected)");
	}
	return handle(c, ep, u->body, u->len);
}

static void
on_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
	struct upload *u = *con_cls;

	(void)cls;
	(void)c;
	(void)t;
	if (u) {
		free(u->body);
		free(u);
		*con_cls = NULL;
	}
}

/* ---- the program ----------------------------------------------------------------------- */

static int
parse_addr(const char *s, const char *dport, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[128], port[16];
	const char *colon;
	struct addrinfo hints, *res = NULL;

	snprintf(port, sizeof(port), "%s", dport);
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || (size_t)(rb - s - 1) >= sizeof(host))
			return -1;
		memcpy(host, s + 1, (size_t)(rb - s - 1));
		host[rb - s - 1] = '\0';
		if (rb[1] == ':')
			snprintf(port, sizeof(port), "%s", rb + 2);
	} else if ((colon = strrchr(s, ':')) != NULL) {
		if ((size_t)(colon - s) >= sizeof(host))
			return -1;
		memcpy(host, s, (size_t)(colon - s));
		host[colon - s] = '\0';
		snprintf(port, sizeof(port), "%s", colon + 1);
	} else {
		snprintf(host, sizeof(host), "%s", s);
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	if (getaddrinfo(host[0] ? host : NULL, port, &hints, &res) || !res)
		return -1;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static void
usage(FILE *f)
{
	fprintf(f,
		"usage: qsteer-gw [options]   OpenAI-compatible HTTP in, QRP to the dataplane\n"
		"options:\n"
		"  -l, --listen ADDR          HTTP HOST:PORT (default 0.0.0.0:8000; port 0: any)\n"
		"  -s, --service ADDR         the dataplane's service HOST:PORT (default\n"
		"                             127.0.0.1:%d; or an agent's, without a dataplane)\n"
		"      --port-file FILE       write the bound HTTP port here once listening\n"
		"      --default-max-tokens N when a request gives none (default 256)\n"
		"      --max-body BYTES       request body limit (default %u: %d QRP packets)\n"
		"      --timeout-s S          a whole request (default 600)\n"
		"      --first-timeout-s S    the agent's first answer (default 60)\n"
		"      --tenant N             QRP tenant when X-QSteer-Tenant is absent (0)\n"
		"      --connection-limit N   concurrent HTTP connections (default 1024)\n"
		"endpoints: POST /v1/completions, POST /v1/chat/completions (\"stream\": true\n"
		"for SSE), GET /metrics (Prometheus), GET /healthz. Request headers\n"
		"X-QSteer-Priority, X-QSteer-SLO-Class, X-QSteer-Difficulty (0..3) and\n"
		"X-QSteer-Tenant set the QRP fields. Prompt tokens are estimated as ceil(bytes / "
		"4) of the prompt text.\n",
		QS_QRP_PORT, QS_GW_MAX_PACKETS * QS_GW_PKT_PAYLOAD - QS_GW_BODY_HDR,
		QS_GW_MAX_PACKETS);
}

/* a whole-word decimal in [lo, hi] (opt.h's reading of numbers) */
static int
num(const char *v, uint64_t lo, uint64_t hi, uint64_t *out)
{
	return qs_opt_u64(v, out) || *out < lo || *out > hi ? -1 : 0;
}

int
main(int argc, char **argv)
{
	static const struct option lo[] = {
	    {"listen", required_argument, NULL, 'l'},
	    {"service", required_argument, NULL, 's'},
	    {"port-file", required_argument, NULL, 1},
	    {"default-max-tokens", required_argument, NULL, 2},
	    {"max-body", required_argument, NULL, 3},
	    {"timeout-s", required_argument, NULL, 4},
	    {"first-timeout-s", required_argument, NULL, 5},
	    {"tenant", required_argument, NULL, 6},
	    {"connection-limit", required_argument, NULL, 7},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct sockaddr_storage lis;
	socklen_t lis_len;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *di;
	uint64_t x, seed = 0;
	int c, port = 0;
	sigset_t sigs;

	snprintf(g_cfg.listen, sizeof(g_cfg.listen), "0.0.0.0:8000");
	snprintf(g_cfg.service, sizeof(g_cfg.service), "127.0.0.1:%d", QS_QRP_PORT);
	g_cfg.default_max_tokens = 256;
	g_cfg.max_body = QS_GW_MAX_PACKETS * QS_GW_PKT_PAYLOAD - QS_GW_BODY_HDR;
	g_cfg.timeout_ms = 600000;
	g_cfg.first_timeout_ms = 60000;
	g_cfg.conn_limit = 1024;
	while ((c = getopt_long(argc, argv, "l:s:h", lo, NULL)) != -1) {
		switch (c) {
		case 'l':
			snprintf(g_cfg.listen, sizeof(g_cfg.listen), "%s", optarg);
			break;
		case 's':
			snprintf(g_cfg.service, sizeof(g_cfg.service), "%s", optarg);
			break;
		case 1:
			snprintf(g_cfg.port_file, sizeof(g_cfg.port_file), "%s", optarg);
			break;
		case 2:
			if (num(optarg, 1, 65536, &x))
				goto bad;
			g_cfg.default_max_tokens = (uint32_t)x;
			break;
		case 3:
			if (num(optarg, 1, QS_GW_MAX_PACKETS * QS_GW_PKT_PAYLOAD - QS_GW_BODY_HDR,
				&x))
				goto bad;
			g_cfg.max_body = (uint32_t)x;
			break;
		case 4:
			if (num(optarg, 1, 86400, &x))
				goto bad;
			g_cfg.timeout_ms = x * 1000;
			break;
		case 5:
			if (num(optarg, 1, 86400, &x))
				goto bad;
			g_cfg.first_timeout_ms = x * 1000;
			break;
		case 6:
			if (num(optarg, 0, 65535, &x))
				goto bad;
			g_cfg.tenant = (uint16_t)x;
			break;
		case 7:
			if (num(optarg, 1, 65536, &x))
				goto bad;
			g_cfg.conn_limit = (uint32_t)x;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qsteer-gw: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (parse_addr(g_cfg.listen, "8000", &lis, &lis_len)) {
		fprintf(stderr, "qsteer-gw: --listen '%s': not an address\n", g_cfg.listen);
		return 2;
	}
	if (parse_addr(g_cfg.service, "7788", &g_svc, &g_svc_len)) {
		fprintf(stderr, "qsteer-gw: --service '%s': not an address\n", g_cfg.service);
		return 2;
	}
	/* ids: a random 24-bit prefix per process, so gateways side by side differ */
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)getpid() ^ (uint64_t)time(NULL) << 20;
	atomic_store(&g_next_id, ((seed & 0xffffffull) << 40) | 1);
	signal(SIGPIPE, SIG_IGN);
	/* INT and TERM are taken by sigwait below: blocked here, before MHD's threads
	 * start, so that none of them gets one */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD |
				 MHD_USE_ERROR_LOG | (lis.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
			     0, NULL, NULL, on_access, NULL, MHD_OPTION_SOCK_ADDR,
			     (struct sockaddr *)&lis, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
			     MHD_OPTION_CONNECTION_LIMIT, (unsigned int)g_cfg.conn_limit,
			     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)600, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "qsteer-gw: cannot listen on %s: %s\n", g_cfg.listen,
			strerror(errno));
		return 1;
	}
	di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	if (di)
		port = di->port;
	if (g_cfg.port_file[0]) {
		char tmp[300];
		FILE *f;

		snprintf(tmp, sizeof(tmp), "%s.tmp", g_cfg.port_file);
		f = fopen(tmp, "w");
		if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) ||
		    rename(tmp, g_cfg.port_file)) {
			fprintf(stderr, "qsteer-gw: %s: %s\n", g_cfg.port_file, strerror(errno));
			MHD_stop_daemon(d);
			return 1;
		}
	}
	fprintf(stderr, "qsteer-gw: listening on port %d, steering to %s\n", port, g_cfg.service);
	(void)sigwait(&sigs, &c);
	MHD_stop_daemon(d);
	return 0;
bad:
	fprintf(stderr, "qsteer-gw: bad value '%s' for an option\n", optarg);
	return 2;
}
