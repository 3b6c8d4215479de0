/*
 * config.c - qsteer-dp's INI configuration (inih): the service section and one
 * section per backend. docs/dataplane.md lists every key. The loader validates
 * everything (addresses, ranges, duplicate ids) and names the line that is wrong.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "qsteer/dp_core.h"
#include "qsteer/report_key.h"
#include "qsteer/status.h"

struct cfg_ctx {
	struct qs_dp_config *c;
	char last_section[64];
	char err[600];
	int in_backend;
	int report_any;	 /* [service] report_source = any */
	int max_age_set; /* report_max_age_ms given: it wins over interval x count */
	uint64_t interval_ms, stale_intervals;
};

static int
parse_u64(const char *v, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long x;

	errno = 0;
	x = strtoull(v, &end, 0);
	if (errno || end == v || *end || v[0] == '-' || x > max)
		return -1;
	*out = x;
	return 0;
}

static int
parse_mac(const char *v, uint8_t mac[6])
{
	unsigned int m[6];
	int i;
	char tail;

	if (sscanf(v, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &tail) != 6)
		return -1;
	for (i = 0; i < 6; i++) {
		if (m[i] > 255)
			return -1;
		mac[i] = (uint8_t)m[i];
	}
	return 0;
}

/*
 * report_from = ADDR: an IPv4 or IPv6 address, optionally with a UDP source port
 * (10.0.1.10:40000, [fd00:1::10]:40000). Once per family; one port per backend.
 */
static int
parse_report_from(const char *value, struct qs_report_src *r)
{
	char host[64];
	const char *port = NULL, *end;
	uint64_t u = 0;
	uint8_t a[16];
	size_t n;

	if (value[0] == '[') {
		end = strchr(value, ']');
		if (!end || (end[1] && end[1] != ':'))
			return -1;
		n = (size_t)(end - value - 1);
		port = end[1] ? end + 2 : NULL;
		value++;
	} else {
		end = strchr(value, ':');
		if (end && strchr(end + 1, ':'))
			end = NULL; /* a bare IPv6 address */
		n = end ? (size_t)(end - value) : strlen(value);
		port = end ? end + 1 : NULL;
	}
	if (n == 0 || n >= sizeof(host))
		return -1;
	memcpy(host, value, n);
	host[n] = 0;
	if (port && (parse_u64(port, 65535, &u) != 0 || u == 0))
		return -1;
	if (port && r->port && r->port != u)
		return -1;
	if (inet_pton(AF_INET, host, a) == 1) {
		if (r->has_ip4)
			return -1;
		memcpy(r->ip4, a, 4);
		r->has_ip4 = 1;
	} else if (inet_pton(AF_INET6, host, a) == 1) {
		if (r->has_ip6)
			return -1;
		memcpy(r->ip6, a, 16);
		r->has_ip6 = 1;
	} else {
		return -1;
	}
	if (port)
		r->port = (uint16_t)u;
	return 0;
}

static int
handler(void *user, const char *section, const char *name, const char *value)
{
	struct cfg_ctx *x = user;
	struct qs_dp_config *c = x->c;
	uint64_t u;
	uint32_t j;

	/* An inih built to call handlers on new sections passes NULL name and value:
	 * nothing to set. (Also tells gcc that section is never NULL below.) */
	if (!section || !name || !value)
		return 1;
	if (strcmp(section, x->last_section) != 0) {
		snprintf(x->last_section, sizeof(x->last_section), "%s", section);
		x->in_backend = strncmp(section, "backend", 7) == 0;
		if (x->in_backend) {
			struct qs_dp_backend_cfg *b;
			const char *nm = section + 7;

			if (c->n_backends >= QS_DP_MAX_BACKENDS) {
				snprintf(x->err, sizeof(x->err), "more than %d backends",
					 QS_DP_MAX_BACKENDS);
				return 0;
			}
			b = &c->be[c->n_backends++];
			memset(b, 0, sizeof(*b));
			b->id = (uint16_t)(c->n_backends - 1);
			b->capacity = 1;
			b->capacity_class = 1;
			for (j = 0; j < QS_DIFFICULTIES; j++)
				b->quality[j] = 1;
			while (*nm == ' ' || *nm == '.' || *nm == ':')
				nm++;
			snprintf(b->name, sizeof(b->name), "%s", *nm ? nm : "backend");
		} else if (strcmp(section, "service") != 0) {
			snprintf(x->err, sizeof(x->err), "unknown section [%s]", section);
			return 0;
		}
	}
	if (x->in_backend) {
		struct qs_dp_backend_cfg *b = &c->be[c->n_backends - 1];

		if (strcmp(name, "id") == 0 && parse_u64(value, 0xfffe, &u) == 0)
			b->id = (uint16_t)u;
		else if (strcmp(name, "mac") == 0 && parse_mac(value, b->mac) == 0)
			;
		else if (strcmp(name, "ip") == 0 && inet_pton(AF_INET, value, b->ip4) == 1)
			b->has_ip4 = true;
		else if (strcmp(name, "ip6") == 0 && inet_pton(AF_INET6, value, b->ip6) == 1)
			b->has_ip6 = true;
		else if (strcmp(name, "port") == 0 && parse_u64(value, 65535, &u) == 0 && u > 0)
			b->port = (uint16_t)u;
		else if (strcmp(name, "capacity_class") == 0 && parse_u64(value, 7, &u) == 0)
			b->capacity_class = (uint8_t)u;
		else if (strcmp(name, "capacity") == 0 && parse_u64(value, 1u << 20, &u) == 0 &&
			 u > 0)
			b->capacity = (uint32_t)u;
		else if (strcmp(name, "name") == 0)
			snprintf(b->name, sizeof(b->name), "%s", value);
		else if (strcmp(name, "variant") == 0 && *value)
			snprintf(b->variant, sizeof(b->variant), "%s", value);
		else if (strcmp(name, "quality") == 0) {
			if (qs_quality_parse_list(value, b->quality) != 0) {
				snprintf(x->err, sizeof(x->err),
					 "[%s] quality = %s: want 1 to %d accuracies in 0..1, "
					 "comma-separated, difficulty 0 first",
					 section, value, QS_DIFFICULTIES);
				return 0;
			}
			b->has_quality = true;
		} else if (strcmp(name, "report_from") == 0 &&
			   parse_report_from(value, &b->report_src) == 0)
			;
		else if (strcmp(name, "report_key") == 0) {
			if (qs_report_key_hex(value, &b->report_key) != 0) {
				/* never echo what may be most of a secret */
				snprintf(x->err, sizeof(x->err),
					 "[%s] report_key: not a key (32 hex digits, not all zero)",
					 section);
				return 0;
			}
		} else if (strcmp(name, "report_key_file") == 0) {
			char kmsg[400];

			if (qs_report_key_load(value, &b->report_key, kmsg, sizeof(kmsg)) !=
			    QS_OK) {
				snprintf(x->err, sizeof(x->err), "[%s] %s", section, kmsg);
				return 0;
			}
		} else {
			snprintf(x->err, sizeof(x->err), "[%s] %s = %s: unknown key or bad value",
				 section, name, value);
			return 0;
		}
		return 1;
	}
	if (strcmp(name, "ip") == 0 && inet_pton(AF_INET, value, c->svc.ip4) == 1)
		c->svc.has_ip4 = true;
	else if (strcmp(name, "ip6") == 0 && inet_pton(AF_INET6, value, c->svc.ip6) == 1)
		c->svc.has_ip6 = true;
	else if (strcmp(name, "port") == 0 && parse_u64(value, 65535, &u) == 0 && u > 0)
		c->svc.port = (uint16_t)u;
	else if (strcmp(name, "report_port") == 0 && parse_u64(value, 65535, &u) == 0 && u > 0)
		c->svc.report_port = (uint16_t)u;
	else if (strcmp(name, "non_qrp") == 0 &&
		 (strcmp(value, "drop") == 0 || strcmp(value, "pass") == 0))
		c->pass_non_qrp = strcmp(value, "pass") == 0;
	else if (strcmp(name, "report_source") == 0 &&
		 (strcmp(value, "backend") == 0 || strcmp(value, "any") == 0))
		x->report_any = strcmp(value, "any") == 0;
	else if (strcmp(name, "report_max_age_ms") == 0 && parse_u64(value, 3600000, &u) == 0) {
		c->report_max_age_ns = u * 1000000ull;
		x->max_age_set = 1;
	} else if (strcmp(name, "report_interval_ms") == 0 && parse_u64(value, 60000, &u) == 0 &&
		   u > 0)
		x->interval_ms = u;
	else if (strcmp(name, "report_stale_intervals") == 0 && parse_u64(value, 1000, &u) == 0 &&
		 u > 0)
		x->stale_intervals = u;
	else if (strcmp(name, "request_ttl_ms") == 0 && parse_u64(value, 3600000, &u) == 0)
		c->request_ttl_ns = u * 1000000ull;
	else if (strcmp(name, "prefix_max_age_ms") == 0 && parse_u64(value, 3600000, &u) == 0)
		c->prefix_max_age_ns = u * 1000000ull;
	else if (strcmp(name, "fallback") == 0 && qs_baseline_parse(value, &c->fallback) == 0)
		;
	else if (strcmp(name, "fallback_seed") == 0 && parse_u64(value, UINT64_MAX, &u) == 0)
		c->fallback_seed = u;
	else if (strcmp(name, "policy_pubkey") == 0) {
		char kmsg[sizeof(x->err) - 32];

		/* repeatable, or a comma-separated list: keys add up (rotation) */
		if (qs_q8_keyset_add_list(&c->policy_keys, value, kmsg, sizeof(kmsg)) != QS_OK) {
			snprintf(x->err, sizeof(x->err), "policy_pubkey: %s", kmsg);
			return 0;
		}
	} else if (strcmp(name, "tenants") == 0) {
		/* per-tenant counters: up to QS_DP_TENANTS distinct ids, comma-separated */
		const char *q = value;

		c->n_tenants = 0;
		while (*q) {
			char *end;
			unsigned long t = strtoul(q, &end, 10);
			uint32_t i;

			if (end == q || t > 65535 || (*end && *end != ',') ||
			    c->n_tenants == QS_DP_TENANTS) {
				snprintf(x->err, sizeof(x->err),
					 "[%s] tenants = %s: want up to %d tenant ids (0..65535), "
					 "comma-separated",
					 section, value, QS_DP_TENANTS);
				return 0;
			}
			for (i = 0; i < c->n_tenants; i++)
				if (c->tenant[i] == t) {
					snprintf(x->err, sizeof(x->err),
						 "[%s] tenants = %s: tenant %lu twice", section,
						 value, t);
					return 0;
				}
			c->tenant[c->n_tenants++] = (uint16_t)t;
			q = *end ? end + 1 : end;
		}
	} else if (strcmp(name, "quality_floor") == 0) {
		if (qs_quality_parse_list(value, c->quality_floor) != 0) {
			snprintf(x->err, sizeof(x->err),
				 "[%s] quality_floor = %s: want 1 to %d shares of the best "
				 "quality in 0..1, comma-separated, SLO class 0 first",
				 section, value, QS_QUALITY_SLO);
			return 0;
		}
	} else if (strcmp(name, "difficulty_prompt_tokens") == 0) {
		/* 1..3 ascending prompt lengths: from each, one class harder (no sign,
		 * no empty field) */
		char buf[128], *q = buf, *comma;

		memset(c->difficulty_prompt_tokens, 0, sizeof(c->difficulty_prompt_tokens));
		if (strlen(value) >= sizeof(buf))
			j = 3; /* too long for three numbers: refused below */
		else
			j = 0;
		snprintf(buf, sizeof(buf), "%s", value);
		for (;; j++) {
			comma = strchr(q, ',');
			if (comma)
				*comma = '\0';
			while (*q == ' ' || *q == '\t')
				q++;
			if (j >= 3 || *q < '0' || *q > '9' || parse_u64(q, UINT32_MAX, &u) != 0 ||
			    u == 0 || (j > 0 && u <= c->difficulty_prompt_tokens[j - 1])) {
				snprintf(x->err, sizeof(x->err),
					 "[%s] difficulty_prompt_tokens = %s: want 1 to 3 "
					 "ascending prompt lengths > 0, comma-separated",
					 section, value);
				return 0;
			}
			c->difficulty_prompt_tokens[j] = (uint32_t)u;
			if (!comma)
				break;
			q = comma + 1;
		}
	} else if (strcmp(name, "clock") == 0 && strcmp(value, "tsc") == 0)
		c->clock = QS_DP_CLOCK_TSC;
	else if (strcmp(name, "clock") == 0 && strcmp(value, "packet") == 0)
		c->clock = QS_DP_CLOCK_PACKET;
	else {
		snprintf(x->err, sizeof(x->err), "[%s] %s = %s: unknown key or bad value", section,
			 name, value);
		return 0;
	}
	return 1;
}

void
qs_dp_config_quality(struct qs_dp_config *c)
{
	double q[QS_DP_MAX_BACKENDS][QS_DIFFICULTIES], best[QS_DIFFICULTIES];
	uint64_t ok[QS_QUALITY_SLO][QS_DIFFICULTIES],
	    all = c->n_backends >= 64 ? ~0ull : (1ull << c->n_backends) - 1;
	uint32_t i, d;

	for (i = 0; i < c->n_backends && i < QS_DP_MAX_BACKENDS; i++)
		for (d = 0; d < QS_DIFFICULTIES; d++)
			q[i][d] = c->be[i].quality[d];
	qs_quality_admissible((const double(*)[QS_DIFFICULTIES])q, c->n_backends, c->quality_floor,
			      0, best, ok);
	for (i = 0; i < QS_QUALITY_SLO; i++)
		for (d = 0; d < QS_DIFFICULTIES; d++)
			c->quality_masked[i][d] = all & ~ok[i][d];
}

int
qs_dp_config_load(const char *path, struct qs_dp_config *c, char *msg, size_t msglen)
{
	struct cfg_ctx x;
	FILE *f;
	int line;
	uint32_t i, j;

	/* the header's contract, "defaults, then the INI file": a caller's stale or
	 * uninitialised struct must not leak into the result (a test loaded into an
	 * uninitialised one and got garbage quality floors under ASan) */
	qs_dp_config_defaults(c);
	memset(&x, 0, sizeof(x));
	x.c = c;
	x.interval_ms = QS_QRP_REPORT_INTERVAL_MS;
	x.stale_intervals = QS_DP_REPORT_STALE_INTERVALS;
	f = fopen(path, "r");
	if (!f) {
		snprintf(msg, msglen, "%s: %s", path, strerror(errno));
		return QS_E_IO;
	}
	line = ini_parse_file(f, handler, &x);
	fclose(f);
	if (line != 0) {
		snprintf(msg, msglen, "%s:%d: %s", path, line, x.err[0] ? x.err : "syntax error");
		return QS_E_VALUE;
	}
	if (c->n_backends == 0) {
		snprintf(msg, msglen, "%s: no [backend ...] section", path);
		return QS_E_VALUE;
	}
	if (!x.max_age_set)
		c->report_max_age_ns = x.interval_ms * x.stale_intervals * 1000000ull;
	for (i = 0; i < c->n_backends; i++) {
		const struct qs_dp_backend_cfg *b = &c->be[i];

		if (!b->has_ip4 && !b->has_ip6) {
			snprintf(msg, msglen, "%s: backend %s has no ip or ip6", path, b->name);
			return QS_E_VALUE;
		}
		if (b->port == 0) {
			snprintf(msg, msglen, "%s: backend %s has no port", path, b->name);
			return QS_E_VALUE;
		}
		if (!c->be[i].report_src.has_ip4 && !c->be[i].report_src.has_ip6)
			qs_dp_report_src_default(&c->be[i]);
		c->be[i].report_src.any = x.report_any;
		for (j = 0; j < i; j++)
			if (c->be[j].id == b->id) {
				snprintf(msg, msglen, "%s: backends %s and %s share id %u", path,
					 c->be[j].name, b->name, b->id);
				return QS_E_VALUE;
			}
	}
	for (i = 1; i < c->n_backends; i++)
		if (c->be[i].has_quality != c->be[0].has_quality) {
			/* one without would count 1 everywhere, the best, and mask the rest */
			snprintf(msg, msglen,
				 "%s: backend %s %s a quality table and backend %s %s; give "
				 "every backend one or none",
				 path, c->be[i].name, c->be[i].has_quality ? "has" : "lacks",
				 c->be[0].name, c->be[0].has_quality ? "has" : "lacks");
			return QS_E_VALUE;
		}
	qs_dp_config_quality(c);
	return QS_OK;
}
