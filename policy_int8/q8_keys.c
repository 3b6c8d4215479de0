/*
 * q8_keys.c - Ed25519 key files for signed policies: generate a pair, read one back,
 * and collect the set of public keys a program trusts (the loader verifies with it).
 * Keys are hex text so that operators can move them through config management and
 * diff them; the secret key file is created 0600 and never overwritten.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <unistd.h>

#include "q8_internal.h"

#ifdef QSTEER_HAVE_SODIUM
#include <sodium.h>
#endif

#ifdef QSTEER_HAVE_SODIUM
/* only keygen writes keys, and keygen needs libsodium */
static int
write_hex(const char *path, const uint8_t *key, size_t len, mode_t mode, char *msg, size_t msglen)
{
	char line[2 * QS_Q8_SECKEY_LEN + 2];
	int fd;
	size_t n;

	for (size_t i = 0; i < len; i++)
		snprintf(line + 2 * i, 3, "%02x", key[i]);
	line[2 * len] = '\n';
	n = 2 * len + 1;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0)
		return q8_fail(QS_E_IO, msg, msglen, path, "cannot create (it must not exist): %s",
			       strerror(errno));
	if (write(fd, line, n) != (ssize_t)n || close(fd) != 0) {
		unlink(path);
		return q8_fail(QS_E_IO, msg, msglen, path, "write failed: %s", strerror(errno));
	}
	return QS_OK;
}
#endif

int
qs_q8_keygen(const char *pub_path, const char *sec_path, char *msg, size_t msglen)
{
#ifdef QSTEER_HAVE_SODIUM
	uint8_t pk[QS_Q8_PUBKEY_LEN], sk[QS_Q8_SECKEY_LEN];
	int rc;

	if (sodium_init() < 0)
		return q8_fail(QS_E_UNSUPPORTED, msg, msglen, "keygen",
			       "libsodium failed to start");
	crypto_sign_keypair(pk, sk);
	rc = write_hex(sec_path, sk, sizeof(sk), 0600, msg, msglen);
	sodium_memzero(sk, sizeof(sk));
	if (rc)
		return rc;
	rc = write_hex(pub_path, pk, sizeof(pk), 0644, msg, msglen);
	if (rc)
		unlink(sec_path);
	return rc;
#else
	(void)pub_path;
	(void)sec_path;
	return q8_fail(QS_E_UNSUPPORTED, msg, msglen, "keygen", "this build has no libsodium");
#endif
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
qs_q8_read_key(const char *path, uint8_t *key, size_t key_len, char *msg, size_t msglen)
{
	char line[2 * QS_Q8_SECKEY_LEN + 8];
	size_t n = 0;
	int rc = QS_OK;
	FILE *f;

	if (key_len != QS_Q8_PUBKEY_LEN && key_len != QS_Q8_SECKEY_LEN)
		return q8_fail(QS_E_ARG, msg, msglen, path, "keys are 32 or 64 bytes");
	f = fopen(path, "re");
	if (!f)
		return q8_fail(QS_E_IO, msg, msglen, path, "cannot open: %s", strerror(errno));
	n = fread(line, 1, sizeof(line) - 1, f);
	fclose(f);
	line[n] = 0;
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' '))
		line[--n] = 0;
	if (n != 2 * key_len) {
		rc = q8_fail(QS_E_VALUE, msg, msglen, path,
			     "expected %zu hex digits (a %s key), found %zu characters",
			     2 * key_len, key_len == QS_Q8_PUBKEY_LEN ? "public" : "secret", n);
		goto out;
	}
	for (size_t i = 0; i < key_len; i++) {
		int hi = hexval(line[2 * i]), lo = hexval(line[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			rc = q8_fail(QS_E_VALUE, msg, msglen, path,
				     "character %zu is not a hex digit", 2 * i + (hi < 0 ? 1 : 2));
			goto out;
		}
		key[i] = (uint8_t)(hi << 4 | lo);
	}
out:
	/* the secret key's text must not linger on the stack */
	explicit_bzero(line, sizeof(line));
	return rc;
}

int
qs_q8_sign_file(const char *in_path, const char *out_path, const char *sec_path, char *msg,
		size_t msglen)
{
	uint8_t sk[QS_Q8_SECKEY_LEN], *buf = NULL, *big;
	size_t len = 0, out_len = 0;
	int rc;

	if ((rc = qs_q8_read_key(sec_path, sk, sizeof(sk), msg, msglen)))
		return rc;
	if ((rc = qs_q8__read_file(in_path, &buf, &len, msg, msglen)))
		goto out;
	big = realloc(buf, len + QS_Q8_SIG_SIZE);
	if (!big) {
		rc = q8_fail(QS_E_NOMEM, msg, msglen, in_path, "cannot allocate");
		goto out;
	}
	buf = big;
	rc = qs_q8_sign(buf, len, len + QS_Q8_SIG_SIZE, sk, &out_len, msg, msglen);
	if (rc == QS_OK)
		rc = qs_q8__write_all(out_path, buf, out_len, msg, msglen);
out:
	explicit_bzero(sk, sizeof(sk));
	free(buf);
	return rc;
}

int
qs_q8_keyset_add_file(struct qs_q8_keyset *ks, const char *path, char *msg, size_t msglen)
{
	uint8_t pk[QS_Q8_PUBKEY_LEN];
	int rc;

	if (!qs_q8_have_signatures())
		return q8_fail(QS_E_UNSUPPORTED, msg, msglen, path,
			       "a policy public key was given, but this build has no libsodium "
			       "(-Dsignatures) and could not enforce it");
	if ((rc = qs_q8_read_key(path, pk, sizeof(pk), msg, msglen)))
		return rc;
	for (uint32_t i = 0; i < ks->n; i++)
		if (memcmp(ks->key[i], pk, sizeof(pk)) == 0)
			return QS_OK; /* the same key named twice (config and option) */
	if (ks->n >= QS_Q8_MAX_PUBKEYS)
		return q8_fail(QS_E_SIZE, msg, msglen, path, "more than %d policy public keys",
			       QS_Q8_MAX_PUBKEYS);
	memcpy(ks->key[ks->n++], pk, sizeof(pk));
	return QS_OK;
}

int
qs_q8_keyset_add_list(struct qs_q8_keyset *ks, const char *list, char *msg, size_t msglen)
{
	char path[4096];
	const char *p = list, *e;
	size_t n;
	int rc;

	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		e = strchr(p, ',');
		if (!e)
			e = p + strlen(p);
		n = (size_t)(e - p);
		while (n && (p[n - 1] == ' ' || p[n - 1] == '\t'))
			n--;
		if (n == 0)
			return q8_fail(QS_E_ARG, msg, msglen, list, "an empty name in a key list");
		if (n >= sizeof(path))
			return q8_fail(QS_E_ARG, msg, msglen, "key list",
				       "a file name is too long");
		memcpy(path, p, n);
		path[n] = 0;
		if ((rc = qs_q8_keyset_add_file(ks, path, msg, msglen)))
			return rc;
		if (!*e)
			return QS_OK;
		p = e + 1;
	}
}
