/*
 * testutil.h - helpers shared by the policy tests (not a test itself): a
 * deterministic PRNG, little-endian byte access, a hand builder of raw .q8 images
 * that does NOT validate (so tests can craft files the writer would refuse, with a
 * correct CRC and content id so that the check under test is the one that fires),
 * and small file helpers. Everything is static so each test links only what it uses.
 */
#ifndef QSTEER_TEST_TESTUTIL_H
#define QSTEER_TEST_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/crc32c.h"
#include "qsteer/le.h"
#include "qsteer/policy.h"
#include "qsteer/rng.h"

/* ---- PRNG: splitmix64, so every run sees the same cases ----------------------- */

struct tu_rng {
	uint64_t s;
};

static inline uint64_t
tu_next(struct tu_rng *r)
{
	return qs_splitmix64(&r->s);
}

/* Uniform in [lo, hi] (inclusive); hi - lo < 2^32. */
static inline int64_t
tu_range(struct tu_rng *r, int64_t lo, int64_t hi)
{
	uint64_t span = (uint64_t)(hi - lo) + 1;

	return lo + (int64_t)(tu_next(r) % span);
}

/* ---- raw .q8 images ------------------------------------------------------------- */

/*
 * Recompute the content id (over [96, len - 4)) and the CRC (last 4 bytes) of an
 * image of len bytes, so a crafted defect is not caught by the CRC first.
 */
static inline void
tu_refix(uint8_t *b, size_t len)
{
	qs_le_wr64(b + QS_Q8_HDR_CONTENT_ID, qs_q8_content_id(b, len));
	qs_le_wr32(b + len - 4, qs_crc32c(0, b, len - 4));
}

/*
 * Build a file image by hand for layers with the given (possibly inconsistent)
 * shapes: n_in[l], n_out[l]. Weights are a small deterministic pattern, biases 0,
 * M = 1 << 20, S = 24, actions {1, 1, 0, 0}. Sizes follow the shapes given, the
 * header's file_size is the real size, and the CRC and content id are correct.
 * Returns a malloc'd buffer and its size in *len.
 */
static inline uint8_t *
tu_craft(uint16_t kind, uint32_t schema, uint16_t n_layers, const uint16_t *n_in,
	 const uint16_t *n_out, uint16_t n_actions, const char *name, size_t *len)
{
	size_t size = QS_Q8_HDR_SIZE + (size_t)n_layers * QS_Q8_LAYER_ENTRY_SIZE, off;
	uint8_t *b;

	for (uint32_t l = 0; l < n_layers; l++)
		size += qs_q8_layer_bytes(n_in[l], n_out[l], l + 1 < n_layers);
	size += (size_t)n_actions * QS_Q8_ACTION_SIZE + 4;
	b = calloc(1, size);
	if (!b)
		abort();
	memcpy(b, QS_Q8_MAGIC, 4);
	qs_le_wr16(b + QS_Q8_HDR_VERSION, QS_Q8_VERSION);
	qs_le_wr16(b + QS_Q8_HDR_KIND, kind);
	qs_le_wr32(b + QS_Q8_HDR_SCHEMA, schema);
	qs_le_wr32(b + QS_Q8_HDR_FILE_SIZE, (uint32_t)size);
	qs_le_wr16(b + QS_Q8_HDR_HDR_SIZE, QS_Q8_HDR_SIZE);
	qs_le_wr16(b + QS_Q8_HDR_LAYERS, n_layers);
	qs_le_wr16(b + QS_Q8_HDR_ACTIONS, n_actions);
	qs_le_wr64(b + QS_Q8_HDR_CREATED, 1700000000);
	if (name)
		memcpy(b + QS_Q8_HDR_NAME, name, strnlen(name, QS_Q8_NAME_LEN - 1));
	off = QS_Q8_HDR_SIZE;
	for (uint32_t l = 0; l < n_layers; l++, off += QS_Q8_LAYER_ENTRY_SIZE) {
		qs_le_wr16(b + off, n_in[l]);
		qs_le_wr16(b + off + 2, n_out[l]);
	}
	for (uint32_t l = 0; l < n_layers; l++) {
		size_t nw = (size_t)n_in[l] * n_out[l];

		for (size_t i = 0; i < nw; i++)
			b[off + i] = (uint8_t)(int8_t)((int)(i * 7 % 255) - 127);
		off += QS_Q8_PAD4(nw);
		off += 4 * (size_t)n_out[l]; /* biases 0 */
		if (l + 1 < n_layers) {
			for (uint32_t j = 0; j < n_out[l]; j++, off += 4)
				qs_le_wr32(b + off, 1u << 20);
			for (uint32_t j = 0; j < n_out[l]; j++)
				b[off + j] = 24;
			off += QS_Q8_PAD4(n_out[l]);
		}
	}
	for (uint32_t a = 0; a < n_actions; a++, off += QS_Q8_ACTION_SIZE) {
		qs_le_wr32(b + off, 1);
		qs_le_wr32(b + off + 4, 1);
	}
	tu_refix(b, size);
	*len = size;
	return b;
}

/* ---- files ---------------------------------------------------------------------- */

/* Read a whole file into a malloc'd buffer; NULL on failure. */
static inline uint8_t *
tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *b = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0) {
		b = malloc((size_t)n + 1);
		if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
			free(b);
			b = NULL;
		}
		*len = (size_t)n;
	}
	fclose(f);
	return b;
}

static inline int
tu_write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(buf, 1, len, f) == len;
	return (fclose(f) == 0 && ok) ? 0 : -1;
}

/*
 * Read a text matrix: lines of whitespace-separated integers, '#' starts a comment
 * line, blank lines are skipped. Every row must have exactly cols values. Returns
 * the number of rows (values in a malloc'd *out), or -1 on a parse error.
 */
static inline long
tu_read_matrix(const char *path, uint32_t cols, int64_t **out)
{
	FILE *f = fopen(path, "r");
	char line[8192];
	size_t cap = 0, n = 0;
	int64_t *v = NULL;
	long rows = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *p = line, *end;
		uint32_t c = 0;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == '\n' || *p == 0)
			continue;
		for (;;) {
			long long x = strtoll(p, &end, 10);

			if (end == p)
				break;
			if (n == cap) {
				cap = cap ? 2 * cap : 1024;
				v = realloc(v, cap * sizeof(*v));
				if (!v)
					abort();
			}
			v[n++] = x;
			c++;
			p = end;
		}
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		if (c != cols || *p) {
			fclose(f);
			free(v);
			return -1;
		}
		rows++;
	}
	fclose(f);
	*out = v;
	return rows;
}

#endif /* QSTEER_TEST_TESTUTIL_H */
