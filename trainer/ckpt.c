/*
 * ckpt.c - read and write training checkpoints (format: ckpt.h).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h"
#include "qsteer/crc32c.h"
#include "util.h"

#define MAX_CKPT_SIZE (64u << 20)

size_t
qs_ckpt_size(const struct qs_ppo_agent *ag)
{
	return QS_CKPT_HDR_SIZE + 4 * 3 * (ag->pi.n_params + ag->vf.n_params) + 4;
}

static void
put_floats(uint8_t **p, const float *f, size_t n)
{
	for (size_t i = 0; i < n; i++, *p += 4)
		qs_le_wr32(*p, qs_train_f2u(f[i]));
}

static void
get_floats(const uint8_t **p, float *f, size_t n)
{
	for (size_t i = 0; i < n; i++, *p += 4)
		f[i] = qs_train_u2f(qs_le_rd32(*p));
}

int
qs_ckpt_encode(const struct qs_ppo_agent *ag, const struct qs_ckpt_meta *meta, uint8_t *buf,
	       size_t cap, size_t *len, char *msg, size_t msglen)
{
	size_t size = qs_ckpt_size(ag);
	uint8_t *p;

	if (size > MAX_CKPT_SIZE || cap < size)
		return qs_fail(msg, msglen, QS_E_SIZE,
			       "checkpoint: needs %zu bytes, buffer has %zu", size, cap);
	memset(buf, 0, QS_CKPT_HDR_SIZE);
	memcpy(buf, QS_CKPT_MAGIC, 4);
	qs_le_wr32(buf + 4, QS_CKPT_VERSION);
	qs_le_wr32(buf + 8, QS_CKPT_HDR_SIZE);
	qs_le_wr32(buf + 12, (uint32_t)size);
	qs_le_wr32(buf + 16, (uint32_t)ag->cfg.algo);
	qs_le_wr32(buf + 20, ag->cfg.n_feat);
	qs_le_wr32(buf + 24, ag->cfg.h1);
	qs_le_wr32(buf + 28, ag->cfg.h2);
	qs_le_wr32(buf + 32, ag->cfg.vh);
	qs_le_wr32(buf + 36, (uint32_t)ag->pi.n_params);
	qs_le_wr32(buf + 40, (uint32_t)ag->vf.n_params);
	qs_le_wr64(buf + 44, meta->seed);
	qs_le_wr64(buf + 52, meta->step);
	qs_le_wr64(buf + 60, ag->updates);
	qs_le_wr64(buf + 68, ag->opt_pi.t);
	qs_le_wr64(buf + 76, ag->opt_vf.t);
	for (int i = 0; i < 4; i++) {
		qs_le_wr64(buf + 84 + 8 * i, ag->rng.s[i]);
		qs_le_wr64(buf + 116 + 8 * i, meta->rng.s[i]);
	}
	p = buf + QS_CKPT_HDR_SIZE;
	put_floats(&p, ag->pi.p, ag->pi.n_params);
	put_floats(&p, ag->vf.p, ag->vf.n_params);
	put_floats(&p, ag->opt_pi.m, ag->pi.n_params);
	put_floats(&p, ag->opt_pi.v, ag->pi.n_params);
	put_floats(&p, ag->opt_vf.m, ag->vf.n_params);
	put_floats(&p, ag->opt_vf.v, ag->vf.n_params);
	qs_le_wr32(p, qs_crc32c(0, buf, size - 4));
	*len = size;
	return QS_OK;
}

/* Header checks shared by decode and peek; needs len >= QS_CKPT_HDR_SIZE. */
static int
check_header(const uint8_t *b, size_t len, const char *label, char *msg, size_t msglen)
{
	uint32_t v, hs, fs, algo;

	if (len < 16)
		return qs_fail(msg, msglen, QS_E_TRUNCATED,
			       "%s: %zu bytes, too short for a checkpoint header (%d)", label, len,
			       QS_CKPT_HDR_SIZE);
	if (memcmp(b, QS_CKPT_MAGIC, 4) != 0)
		return qs_fail(msg, msglen, QS_E_MAGIC,
			       "%s: not a qsteer checkpoint (magic at offset 0 is not \"%s\")",
			       label, QS_CKPT_MAGIC);
	v = qs_le_rd32(b + 4);
	if (v != QS_CKPT_VERSION)
		return qs_fail(msg, msglen, QS_E_VERSION,
			       "%s: checkpoint version %u, this trainer reads version %d", label, v,
			       QS_CKPT_VERSION);
	hs = qs_le_rd32(b + 8);
	if (hs != QS_CKPT_HDR_SIZE)
		return qs_fail(msg, msglen, QS_E_SIZE,
			       "%s: header size %u at offset 8, expected %d", label, hs,
			       QS_CKPT_HDR_SIZE);
	fs = qs_le_rd32(b + 12);
	if (fs > MAX_CKPT_SIZE || fs < QS_CKPT_HDR_SIZE + 4)
		return qs_fail(msg, msglen, QS_E_SIZE,
			       "%s: declared file size %u at offset 12 is impossible", label, fs);
	if (len < fs)
		return qs_fail(msg, msglen, QS_E_TRUNCATED,
			       "%s: truncated: %zu bytes, the header declares %u", label, len, fs);
	if (len > fs)
		return qs_fail(msg, msglen, QS_E_SIZE,
			       "%s: %zu bytes, the header declares %u (trailing bytes)", label, len,
			       fs);
	if (qs_crc32c(0, b, fs - 4) != qs_le_rd32(b + fs - 4))
		return qs_fail(msg, msglen, QS_E_CRC,
			       "%s: CRC32C mismatch (stored %#010x, computed %#010x): the "
			       "file is corrupt",
			       label, qs_le_rd32(b + fs - 4), qs_crc32c(0, b, fs - 4));
	algo = qs_le_rd32(b + 16);
	if (algo >= QS_ALGO_COUNT)
		return qs_fail(msg, msglen, QS_E_VALUE, "%s: algorithm %u at offset 16 is unknown",
			       label, algo);
	for (int o = 148; o < QS_CKPT_HDR_SIZE; o++)
		if (b[o])
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "%s: reserved byte at offset %d is not 0", label, o);
	return QS_OK;
}

int
qs_ckpt_decode(const uint8_t *b, size_t len, const char *label, struct qs_ppo_agent *ag,
	       struct qs_ckpt_meta *meta, char *msg, size_t msglen)
{
	size_t npi = ag->pi.n_params, nvf = ag->vf.n_params;
	uint32_t f[7];
	const uint8_t *p;
	int rc = check_header(b, len, label, msg, msglen);

	if (rc != QS_OK)
		return rc;
	for (int i = 0; i < 7; i++)
		f[i] = qs_le_rd32(b + 16 + 4 * i);
	if (f[0] != (uint32_t)ag->cfg.algo || f[1] != ag->cfg.n_feat || f[2] != ag->cfg.h1 ||
	    f[3] != ag->cfg.h2 || f[4] != ag->cfg.vh || f[5] != npi || f[6] != nvf)
		return qs_fail(msg, msglen, QS_E_SHAPE,
			       "%s: checkpoint is %s %u->%u->%u->1 (value hidden %u, %u+%u "
			       "parameters); this run is %s %u->%u->%u->1 (value hidden %u)",
			       label, qs_algo_name((enum qs_algo)f[0]), f[1], f[2], f[3], f[4],
			       f[5], f[6], qs_algo_name(ag->cfg.algo), ag->cfg.n_feat, ag->cfg.h1,
			       ag->cfg.h2, ag->cfg.vh);
	if (qs_le_rd32(b + 12) != qs_ckpt_size(ag))
		return qs_fail(msg, msglen, QS_E_SIZE, "%s: %u bytes, but its shapes need %zu",
			       label, qs_le_rd32(b + 12), qs_ckpt_size(ag));
	/* Every float must be finite before anything is copied. */
	for (size_t off = QS_CKPT_HDR_SIZE; off + 4 < len; off += 4)
		if (!isfinite(qs_train_u2f(qs_le_rd32(b + off))))
			return qs_fail(msg, msglen, QS_E_VALUE,
				       "%s: non-finite float at offset %zu", label, off);
	meta->seed = qs_le_rd64(b + 44);
	meta->step = qs_le_rd64(b + 52);
	ag->updates = qs_le_rd64(b + 60);
	ag->opt_pi.t = qs_le_rd64(b + 68);
	ag->opt_vf.t = qs_le_rd64(b + 76);
	for (int i = 0; i < 4; i++) {
		ag->rng.s[i] = qs_le_rd64(b + 84 + 8 * i);
		meta->rng.s[i] = qs_le_rd64(b + 116 + 8 * i);
	}
	p = b + QS_CKPT_HDR_SIZE;
	get_floats(&p, ag->pi.p, npi);
	get_floats(&p, ag->vf.p, nvf);
	get_floats(&p, ag->opt_pi.m, npi);
	get_floats(&p, ag->opt_pi.v, npi);
	get_floats(&p, ag->opt_vf.m, nvf);
	get_floats(&p, ag->opt_vf.v, nvf);
	return QS_OK;
}

int
qs_ckpt_save(const char *path, const struct qs_ppo_agent *ag, const struct qs_ckpt_meta *meta,
	     char *msg, size_t msglen)
{
	size_t size = qs_ckpt_size(ag), len = 0;
	uint8_t *buf = malloc(size);
	char tmp[4096];
	FILE *f = NULL;
	int rc;

	if (!buf)
		return qs_fail(msg, msglen, QS_E_NOMEM, "checkpoint: %zu bytes", size);
	rc = qs_ckpt_encode(ag, meta, buf, size, &len, msg, msglen);
	if (rc != QS_OK)
		goto out;
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		rc = qs_fail(msg, msglen, QS_E_ARG, "checkpoint: path too long");
		goto out;
	}
	f = fopen(tmp, "wb");
	if (!f || fwrite(buf, 1, len, f) != len || fflush(f) != 0) {
		rc = qs_fail(msg, msglen, QS_E_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	if (fclose(f) != 0) {
		f = NULL;
		rc = qs_fail(msg, msglen, QS_E_IO, "%s: %s", tmp, strerror(errno));
		goto out;
	}
	f = NULL;
	if (rename(tmp, path) != 0) {
		rc = qs_fail(msg, msglen, QS_E_IO, "rename %s -> %s: %s", tmp, path,
			     strerror(errno));
		goto out;
	}
	rc = QS_OK;
out:
	if (f)
		fclose(f);
	free(buf);
	return rc;
}

static int
read_file(const char *path, uint8_t **out, size_t *len, char *msg, size_t msglen)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return qs_fail(msg, msglen, QS_E_IO, "%s: %s", path, strerror(errno));
	for (;;) {
		size_t got;

		if (n == cap) {
			uint8_t *nb;

			if (cap >= MAX_CKPT_SIZE + 1) {
				fclose(f);
				free(buf);
				return qs_fail(msg, msglen, QS_E_SIZE,
					       "%s: larger than %u bytes, not a checkpoint", path,
					       MAX_CKPT_SIZE);
			}
			cap = cap ? cap * 2 : 65536;
			nb = realloc(buf, cap);
			if (!nb) {
				fclose(f);
				free(buf);
				return qs_fail(msg, msglen, QS_E_NOMEM, "%s", path);
			}
			buf = nb;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		fclose(f);
		free(buf);
		return qs_fail(msg, msglen, QS_E_IO, "%s: read error", path);
	}
	fclose(f);
	*out = buf;
	*len = n;
	return QS_OK;
}

int
qs_ckpt_load(const char *path, struct qs_ppo_agent *ag, struct qs_ckpt_meta *meta, char *msg,
	     size_t msglen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = read_file(path, &buf, &len, msg, msglen);

	if (rc != QS_OK)
		return rc;
	rc = qs_ckpt_decode(buf, len, path, ag, meta, msg, msglen);
	free(buf);
	return rc;
}

int
qs_ckpt_peek(const char *path, struct qs_ppo_cfg *cfg, char *msg, size_t msglen)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc = read_file(path, &buf, &len, msg, msglen);

	if (rc != QS_OK)
		return rc;
	rc = check_header(buf, len, path, msg, msglen);
	if (rc == QS_OK) {
		cfg->algo = (enum qs_algo)qs_le_rd32(buf + 16);
		cfg->n_feat = qs_le_rd32(buf + 20);
		cfg->h1 = qs_le_rd32(buf + 24);
		cfg->h2 = qs_le_rd32(buf + 28);
		cfg->vh = qs_le_rd32(buf + 32);
	}
	free(buf);
	return rc;
}
