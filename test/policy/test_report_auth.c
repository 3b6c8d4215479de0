/*
 * test_report_auth.c - the report tag (siphash.h, report_auth.h) against an
 * independent implementation, libsodium's crypto_shorthash_siphashx24 (SipHash-2-4,
 * 128-bit output), on every length up to the bound and random keys; the key
 * parsers; and the key file's refusals (report_key.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qs_test.h"
#include <sodium.h>

#include "qsteer/report_key.h"
#include "qsteer/rng.h"
#include "qsteer/status.h"

static void
test_siphash_vs_libsodium(void **state)
{
	uint8_t key[16], msg[QS_SIPHASH_MAX_LEN + 1], a[16], b[16];
	uint64_t st = 7;
	uint32_t len, trial, i;

	(void)state;
	assert_int_equal(crypto_shorthash_siphashx24_BYTES, 16);
	assert_int_equal(crypto_shorthash_siphashx24_KEYBYTES, 16);
	for (trial = 0; trial < 8; trial++) {
		for (i = 0; i < 16; i++)
			key[i] = (uint8_t)qs_splitmix64(&st);
		for (len = 0; len <= QS_SIPHASH_MAX_LEN; len++) {
			for (i = 0; i < len; i++)
				msg[i] = (uint8_t)qs_splitmix64(&st);
			assert_int_equal(qs_siphash128(key, msg, len, a), 0);
			crypto_shorthash_siphashx24(b, msg, len, key);
			assert_memory_equal(a, b, 16);
		}
	}
	/* past the bound: refused, nothing written */
	memset(a, 0x5a, sizeof(a));
	assert_int_equal(qs_siphash128(key, msg, QS_SIPHASH_MAX_LEN + 1, a), -1);
	assert_int_equal(a[0], 0x5a);
}

/* Sign, check, and every single-bit change of the signed bytes or the tag fails. */
static void
test_sign_and_check(void **state)
{
	struct qs_report_key k;
	struct qs_qrp_hdr h = {QS_QRP_T_REPORT, QS_QRP_F_AUTH, 0, 99, 0, 0, 0, 0, 0, 32};
	struct qs_qrp_report r = {3, 0, 10, 2, 100, 4096, 900, 30000, 50, 7, 6, 123456789};
	uint8_t m[QS_QRP_AUTH_MSG_LEN + QS_QRP_REPORT_TAG_LEN], t[sizeof(m)];
	struct qs_report_key none = {0};
	uint32_t bit;

	(void)state;
	assert_int_equal(qs_report_key_hex("00112233445566778899aabbccddeeff", &k), 0);
	qs_qrp_write_hdr(m, &h);
	qs_qrp_write_report(m + QS_QRP_HDR_LEN, &r);
	qs_report_sign(k.key, m);
	assert_true(qs_report_auth_ok(&k, QS_QRP_F_AUTH, m));
	assert_false(qs_report_auth_ok(&k, 0, m)); /* keyed: an untagged report is refused */
	assert_true(qs_report_auth_ok(&none, 0, m));
	for (bit = 0; bit < 8 * sizeof(m); bit++) {
		memcpy(t, m, sizeof(m));
		t[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		assert_false(qs_report_auth_ok(&k, QS_QRP_F_AUTH, t));
	}
}

static void
test_key_hex(void **state)
{
	struct qs_report_key k;
	static const char *bad[] = {
	    "",
	    "0011223344556677",			  /* short */
	    "00112233445566778899aabbccddeeff00", /* long */
	    "00112233445566778899aabbccddeefg",	  /* not hex */
	    "00000000000000000000000000000000",	  /* all zero */
	    "0011223344556677 8899aabbccddeeff",  /* blank inside */
	    "0x112233445566778899aabbccddeeff",
	};
	uint32_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(&k, 0, sizeof(k));
		assert_int_equal(qs_report_key_hex(bad[i], &k), -1);
		assert_int_equal(k.has_key, 0);
	}
	assert_int_equal(qs_report_key_hex("  00112233445566778899AABBCCDDEEFF\r\n", &k), 0);
	assert_int_equal(k.has_key, 1);
	assert_int_equal(k.key[0], 0x00);
	assert_int_equal(k.key[9], 0x99);
	assert_int_equal(k.key[15], 0xff);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void
test_key_file(void **state)
{
	char dir[] = "/tmp/qsteer-rkey-XXXXXX", path[64], msg[512];
	struct qs_report_key k;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/key", dir);
	write_file(path, "00112233445566778899aabbccddeeff\n", 0600);
	assert_int_equal(qs_report_key_load(path, &k, msg, sizeof(msg)), QS_OK);
	assert_int_equal(k.key[1], 0x11);
	/* readable by others: refused, and the message says why and never the key */
	write_file(path, "00112233445566778899aabbccddeeff\n", 0644);
	assert_int_equal(qs_report_key_load(path, &k, msg, sizeof(msg)), QS_E_VALUE);
	assert_non_null(strstr(msg, "chmod 600"));
	assert_null(strstr(msg, "0011223344"));
	write_file(path, "not a key\n", 0600);
	assert_int_equal(qs_report_key_load(path, &k, msg, sizeof(msg)), QS_E_VALUE);
	assert_non_null(strstr(msg, path));
	unlink(path);
	assert_int_equal(qs_report_key_load(path, &k, msg, sizeof(msg)), QS_E_IO);
	rmdir(dir);
}

/* libsodium is the reference the checks compare against. */
static int
init_sodium(void **state)
{
	(void)state;
	return sodium_init() < 0 ? -1 : 0;
}

QS_TEST_MAIN_GROUP(init_sodium, NULL, cmocka_unit_test(test_siphash_vs_libsodium),
		   cmocka_unit_test(test_sign_and_check), cmocka_unit_test(test_key_hex),
		   cmocka_unit_test(test_key_file))
