/*
 * test_ckpt.c - checkpoints: an exact save/resume round trip, and every kind of
 * damage (truncation, bit flips, wrong magic, version, shapes, missing file) is a
 * clear error that leaves the agent untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "qs_test.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"

static void
make_agent(struct qs_ppo_agent *ag, uint64_t seed, uint32_t h1)
{
	struct qs_ppo_cfg c;
	struct qs_ppo_buf b;
	struct qs_ppo_actor act;
	struct qs_rng rng;
	uint8_t rows[4 * 16];

	qs_ppo_defaults(&c);
	c.h1 = h1;
	c.minibatch = 16;
	c.epochs = 2;
	assert_int_equal(qs_ppo_agent_init(ag, &c, seed, NULL, 0), QS_OK);
	/* a real update, so the Adam moments and step counts are not zero */
	assert_int_equal(qs_ppo_buf_init(&b, 1, 32, 128, 16, NULL, 0), QS_OK);
	assert_int_equal(qs_ppo_actor_init(&act, ag, NULL, 0), QS_OK);
	qs_rng_seed(&rng, seed, 9);
	for (int i = 0; i < 32; i++) {
		uint32_t a, idx;
		float lp, v;

		for (int k = 0; k < 64; k++)
			rows[k] = (uint8_t)qs_rng_below(&rng, 128);
		qs_ppo_act(ag, &act, rows, 4, 0xf, &rng, 0, &a, &lp, &v);
		qs_ppo_buf_push(&b, 0, rows, 4, 0xf, a, lp, v, &idx);
		qs_ppo_buf_credit(&b, idx, (float)(a == 0));
	}
	qs_ppo_buf_finish(&b, 0.9f, 0.9f);
	assert_int_equal(qs_ppo_update(ag, &b, NULL, NULL, 0), QS_OK);
	qs_ppo_actor_free(&act);
	qs_ppo_buf_free(&b);
}

static int
same_agent(const struct qs_ppo_agent *a, const struct qs_ppo_agent *b)
{
	return a->pi.n_params == b->pi.n_params && !memcmp(a->pi.p, b->pi.p, a->pi.n_params * 4) &&
	       !memcmp(a->vf.p, b->vf.p, a->vf.n_params * 4) &&
	       !memcmp(a->opt_pi.m, b->opt_pi.m, a->pi.n_params * 4) &&
	       !memcmp(a->opt_pi.v, b->opt_pi.v, a->pi.n_params * 4) &&
	       !memcmp(a->opt_vf.m, b->opt_vf.m, a->vf.n_params * 4) &&
	       !memcmp(a->opt_vf.v, b->opt_vf.v, a->vf.n_params * 4) &&
	       a->opt_pi.t == b->opt_pi.t && a->opt_vf.t == b->opt_vf.t &&
	       a->updates == b->updates && !memcmp(&a->rng, &b->rng, sizeof(a->rng));
}

static void
test_round_trip(void **state)
{
	struct qs_ppo_agent a, b;
	struct qs_ckpt_meta m = {77, 12345, {{1, 2, 3, 4}}}, m2;
	char path[] = "/tmp/qsteer-ckpt-XXXXXX", msg[256];
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);
	make_agent(&a, 1, 32);
	make_agent(&b, 2, 32); /* different weights and state */
	assert_false(same_agent(&a, &b));
	assert_int_equal(qs_ckpt_save(path, &a, &m, msg, sizeof(msg)), QS_OK);
	if (qs_ckpt_load(path, &b, &m2, msg, sizeof(msg)) != QS_OK)
		fail_msg("%s", msg);
	assert_true(same_agent(&a, &b));
	assert_true(m2.seed == 77 && m2.step == 12345 && m2.rng.s[3] == 4);
	unlink(path);
	qs_ppo_agent_free(&a);
	qs_ppo_agent_free(&b);
}

static void
test_damage(void **state)
{
	struct qs_ppo_agent a, b, keep;
	struct qs_ckpt_meta m = {1, 2, {{1, 2, 3, 4}}}, m2;
	size_t size, len;
	uint8_t *buf, *bad;
	char msg[256];
	int rc;

	(void)state;
	make_agent(&a, 1, 32);
	make_agent(&b, 2, 32);
	make_agent(&keep, 2, 32);
	size = qs_ckpt_size(&a);
	buf = malloc(size);
	bad = malloc(size + 8);
	assert_int_equal(qs_ckpt_encode(&a, &m, buf, size, &len, NULL, 0), QS_OK);
	assert_int_equal(len, size);

	/* truncation at every length from 0 to size - 1 (stride for speed) */
	for (size_t n = 0; n < size; n += n < 200 ? 1 : 97) {
		msg[0] = 0;
		rc = qs_ckpt_decode(buf, n, "ck", &b, &m2, msg, sizeof(msg));
		assert_int_not_equal(rc, QS_OK);
		assert_true(rc == QS_E_TRUNCATED || (n < 16 && rc == QS_E_MAGIC));
		assert_non_null(strstr(msg, "ck: "));
	}
	/* trailing garbage */
	memcpy(bad, buf, size);
	assert_int_equal(qs_ckpt_decode(bad, size + 3, "ck", &b, &m2, msg, sizeof(msg)), QS_E_SIZE);
	/* every single-bit flip in the header, and a sample elsewhere */
	for (size_t bit = 0; bit < size * 8; bit += bit < QS_CKPT_HDR_SIZE * 8 ? 1 : 61) {
		memcpy(bad, buf, size);
		bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		msg[0] = 0;
		rc = qs_ckpt_decode(bad, size, "ck", &b, &m2, msg, sizeof(msg));
		if (rc == QS_OK)
			fail_msg("bit %zu flipped and the checkpoint still loaded", bit);
		assert_true(strlen(msg) > 4);
	}
	/* wrong magic names the magic */
	memcpy(bad, buf, size);
	memcpy(bad, "QSQ8", 4);
	assert_int_equal(qs_ckpt_decode(bad, size, "ck", &b, &m2, msg, sizeof(msg)), QS_E_MAGIC);
	assert_non_null(strstr(msg, "magic"));
	/* a flip in the payload is a CRC error that says so */
	memcpy(bad, buf, size);
	bad[size / 2] ^= 4;
	assert_int_equal(qs_ckpt_decode(bad, size, "ck", &b, &m2, msg, sizeof(msg)), QS_E_CRC);
	assert_non_null(strstr(msg, "CRC32C"));
	assert_true(same_agent(&b, &keep)); /* nothing failed half-way */
	qs_ppo_agent_free(&b);
	/* a differently shaped run refuses it, naming both shapes */
	make_agent(&b, 2, 64);
	assert_int_equal(qs_ckpt_decode(buf, size, "ck", &b, &m2, msg, sizeof(msg)), QS_E_SHAPE);
	assert_non_null(strstr(msg, "16->32->16->1"));
	assert_non_null(strstr(msg, "16->64->16->1"));
	/* so does a run of another algorithm, naming both */
	{
		struct qs_ppo_agent dq;
		struct qs_ppo_cfg c;

		qs_ppo_defaults(&c);
		c.algo = QS_ALGO_DQN;
		assert_int_equal(qs_ppo_agent_init(&dq, &c, 2, NULL, 0), QS_OK);
		assert_int_equal(qs_ckpt_decode(buf, size, "ck", &dq, &m2, msg, sizeof(msg)),
				 QS_E_SHAPE);
		assert_non_null(strstr(msg, "checkpoint is ppo 16->32->16->1"));
		assert_non_null(strstr(msg, "this run is dqn 16->32->16->1"));
		qs_ppo_agent_free(&dq);
	}
	/* missing file */
	assert_int_equal(qs_ckpt_load("/nonexistent/qsteer.ckpt", &b, &m2, msg, sizeof(msg)),
			 QS_E_IO);
	assert_non_null(strstr(msg, "/nonexistent/qsteer.ckpt"));
	free(buf);
	free(bad);
	qs_ppo_agent_free(&a);
	qs_ppo_agent_free(&b);
	qs_ppo_agent_free(&keep);
}

QS_TEST_MAIN(cmocka_unit_test(test_round_trip), cmocka_unit_test(test_damage))
