/*
 * q8_write.c - serialize a policy description into the .q8 format, and sign files.
 *
 * The writer never trusts itself: after serializing it runs the loader's complete
 * check over the bytes, so a file it returns is one every loader accepts.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "q8_internal.h"
#include "qsteer/crc32c.h"

#ifdef QSTEER_HAVE_SODIUM
#include <sodium.h>
#endif

size_t
qs_q8_size(const struct qs_q8_desc *d)
{
	size_t size;

	if (!d || d->n_layers < 1 || d->n_layers > QS_INT8_MAX_LAYERS)
		return 0;
	size = QS_Q8_HDR_SIZE + (size_t)d->n_layers * QS_Q8_LAYER_ENTRY_SIZE;
	for (uint32_t l = 0; l < d->n_layers; l++) {
		if (!d->layer[l].n_in || d->layer[l].n_in > QS_INT8_MAX_DIM || !d->layer[l].n_out ||
		    d->layer[l].n_out > QS_INT8_MAX_DIM)
			return 0;
		size += qs_q8_layer_bytes(d->layer[l].n_in, d->layer[l].n_out, l + 1 < d->n_layers);
	}
	if (d->n_actions > QS_Q8_MAX_ACTIONS)
		return 0;
	return size + (size_t)d->n_actions * QS_Q8_ACTION_SIZE + 4;
}

int
qs_q8_write(const struct qs_q8_desc *d, uint8_t *buf, size_t cap, size_t *len, char *msg,
	    size_t msglen)
{
	const char *label = d && d->name ? d->name : "policy";
	size_t size = qs_q8_size(d), off, name_len;
	int sig, rc;

	if (!size)
		return q8_fail(QS_E_SHAPE, msg, msglen, label,
			       "impossible description (layer count, a dimension or the action "
			       "count out of range)");
	if (!buf || cap < size)
		return q8_fail(QS_E_ARG, msg, msglen, label, "needs %zu bytes, buffer has %zu",
			       size, cap);
	name_len = d->name ? strlen(d->name) : 0;
	if (name_len >= QS_Q8_NAME_LEN)
		return q8_fail(QS_E_VALUE, msg, msglen, label, "name longer than %d characters",
			       QS_Q8_NAME_LEN - 1);
	for (uint32_t l = 0; l < d->n_layers; l++) {
		const struct qs_q8_layer_desc *L = &d->layer[l];

		if (!L->w || !L->bias || (l + 1 < d->n_layers && (!L->m || !L->s)))
			return q8_fail(QS_E_ARG, msg, msglen, label, "layer %u is missing an array",
				       l + 1);
	}
	if (d->n_actions && !d->action)
		return q8_fail(QS_E_ARG, msg, msglen, label, "action table missing");

	memset(buf, 0, size);
	memcpy(buf + QS_Q8_HDR_MAGIC, QS_Q8_MAGIC, 4);
	qs_le_wr16(buf + QS_Q8_HDR_VERSION, QS_Q8_VERSION);
	qs_le_wr16(buf + QS_Q8_HDR_KIND, d->kind);
	qs_le_wr32(buf + QS_Q8_HDR_SCHEMA, d->schema);
	qs_le_wr32(buf + QS_Q8_HDR_FILE_SIZE, (uint32_t)size);
	qs_le_wr16(buf + QS_Q8_HDR_HDR_SIZE, QS_Q8_HDR_SIZE);
	qs_le_wr16(buf + QS_Q8_HDR_LAYERS, d->n_layers);
	qs_le_wr16(buf + QS_Q8_HDR_ACTIONS, d->n_actions);
	qs_le_wr64(buf + QS_Q8_HDR_CREATED, d->created);
	if (name_len)
		memcpy(buf + QS_Q8_HDR_NAME, d->name, name_len);

	off = QS_Q8_HDR_SIZE;
	for (uint32_t l = 0; l < d->n_layers; l++, off += QS_Q8_LAYER_ENTRY_SIZE) {
		qs_le_wr16(buf + off, d->layer[l].n_in);
		qs_le_wr16(buf + off + 2, d->layer[l].n_out);
	}
	for (uint32_t l = 0; l < d->n_layers; l++) {
		const struct qs_q8_layer_desc *L = &d->layer[l];
		size_t nw = (size_t)L->n_in * L->n_out;

		memcpy(buf + off, L->w, nw);
		off += QS_Q8_PAD4(nw);
		for (uint32_t j = 0; j < L->n_out; j++, off += 4)
			qs_le_wr32(buf + off, (uint32_t)L->bias[j]);
		if (l + 1 == d->n_layers)
			continue;
		for (uint32_t j = 0; j < L->n_out; j++, off += 4)
			qs_le_wr32(buf + off, (uint32_t)L->m[j]);
		memcpy(buf + off, L->s, L->n_out);
		off += QS_Q8_PAD4(L->n_out);
	}
	for (uint32_t a = 0; a < d->n_actions; a++, off += QS_Q8_ACTION_SIZE) {
		qs_le_wr32(buf + off, d->action[a].max_seqs);
		qs_le_wr32(buf + off + 4, d->action[a].max_tokens);
		qs_le_wr32(buf + off + 8, d->action[a].kv_reserve_pct);
		qs_le_wr32(buf + off + 12, d->action[a].flags);
	}
	qs_le_wr64(buf + QS_Q8_HDR_CONTENT_ID, qs_q8_content_id(buf, size));
	qs_le_wr32(buf + size - 4, qs_crc32c(0, buf, size - 4));
	rc = qs_q8__check(buf, size, label, NULL, &sig, msg, msglen);
	if (rc != QS_OK)
		return rc; /* the description holds something the format refuses */
	if (len)
		*len = size;
	return QS_OK;
}

int
qs_q8__write_all(const char *path, const uint8_t *buf, size_t len, char *msg, size_t msglen)
{
	/* A sibling temp file renamed over the target: a reader never sees half a policy.
	 * The name carries pid and thread id, so concurrent writers do not collide, and
	 * the directory is synced after the rename so the new name survives a crash. */
	char tmp[4096], dir[4096];
	const char *slash;
	int fd = -1, dfd, n, rc = QS_OK;

	n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%ld", path, (long)getpid(), (long)gettid());
	if (n < 0 || (size_t)n >= sizeof(tmp))
		return q8_fail(QS_E_ARG, msg, msglen, path, "path too long");
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return q8_fail(QS_E_IO, msg, msglen, path, "cannot create %s: %s", tmp,
			       strerror(errno));
	for (size_t done = 0; done < len;) {
		ssize_t w = write(fd, buf + done, len - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = q8_fail(QS_E_IO, msg, msglen, path, "write failed: %s",
				     strerror(w < 0 ? errno : EIO));
			goto out;
		}
		done += (size_t)w;
	}
	if (fsync(fd) != 0) {
		rc = q8_fail(QS_E_IO, msg, msglen, path, "cannot flush: %s", strerror(errno));
		goto out;
	}
	n = close(fd);
	fd = -1;
	if (n != 0) {
		rc = q8_fail(QS_E_IO, msg, msglen, path, "cannot close: %s", strerror(errno));
		goto out;
	}
	if (rename(tmp, path) != 0) {
		rc = q8_fail(QS_E_IO, msg, msglen, path, "cannot rename into place: %s",
			     strerror(errno));
		goto out;
	}
	slash = strrchr(path, '/');
	n = snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + 1 : 1,
		     slash ? path : ".");
	if (n > 0 && (size_t)n < sizeof(dir) &&
	    (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(dfd); /* best effort: some filesystems refuse fsync on directories */
		close(dfd);
	}
	return QS_OK;
out:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	return rc;
}

int
qs_q8_write_file(const struct qs_q8_desc *d, const char *path, char *msg, size_t msglen)
{
	size_t size = qs_q8_size(d), len = 0;
	uint8_t *buf;
	int rc;

	if (!size)
		return q8_fail(QS_E_SHAPE, msg, msglen, path, "impossible policy description");
	buf = malloc(size);
	if (!buf)
		return q8_fail(QS_E_NOMEM, msg, msglen, path, "cannot allocate %zu bytes", size);
	rc = qs_q8_write(d, buf, size, &len, msg, msglen);
	if (rc == QS_OK)
		rc = qs_q8__write_all(path, buf, len, msg, msglen);
	free(buf);
	return rc;
}

int
qs_q8_sign(uint8_t *buf, size_t len, size_t cap, const uint8_t sk[64], size_t *out_len, char *msg,
	   size_t msglen)
{
	int sig = 0, rc;

	if ((rc = qs_q8__check(buf, len, "policy", NULL, &sig, msg, msglen)))
		return rc;
	if (sig)
		return q8_fail(QS_E_SIGNATURE, msg, msglen, "policy", "already signed");
	if (cap < len + QS_Q8_SIG_SIZE)
		return q8_fail(QS_E_ARG, msg, msglen, "policy", "no room for the signature");
#ifdef QSTEER_HAVE_SODIUM
	if (sodium_init() < 0)
		return q8_fail(QS_E_UNSUPPORTED, msg, msglen, "policy",
			       "libsodium failed to start");
	memcpy(buf + len, QS_Q8_SIG_MAGIC, 4);
	qs_le_wr32(buf + len + 4, QS_Q8_SIG_ALG_ED25519);
	crypto_sign_detached(buf + len + 8, NULL, buf, len, sk);
	*out_len = len + QS_Q8_SIG_SIZE;
	return QS_OK;
#else
	(void)sk;
	(void)out_len;
	return q8_fail(QS_E_UNSUPPORTED, msg, msglen, "policy", "this build has no libsodium");
#endif
}
