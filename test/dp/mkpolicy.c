/*
 * mkpolicy.c - test helper: write a random router scorer (.q8, schema router v1,
 * 16 -> 32 -> 16 -> 1) from a seed, through the library's own writer, so the
 * dataplane tests and the benchmark have policies that differ in their decisions.
 * usage: qsteer-test-mkpolicy SEED OUT.q8 [NAME]
 */
#include <stdio.h>
#include <stdlib.h>

#include "qsteer/policy.h"
#include "qsteer/rng.h"

static uint64_t
next(uint64_t *s)
{
	return qs_splitmix64(s);
}

int
main(int argc, char **argv)
{
	static int8_t w1[32 * 16], w2[16 * 32], w3[16];
	static int32_t b1[32], b2[16], b3[1], m1[32], m2[16];
	static uint8_t s1[32], s2[16];
	struct qs_q8_desc d = {0};
	uint64_t seed;
	char msg[256];
	int i;

	if (argc < 3) {
		fprintf(stderr, "usage: %s SEED OUT.q8 [NAME]\n", argv[0]);
		return 2;
	}
	seed = strtoull(argv[1], NULL, 0);
	for (i = 0; i < 32 * 16; i++)
		w1[i] = (int8_t)((int)(next(&seed) % 255) - 127);
	for (i = 0; i < 16 * 32; i++)
		w2[i] = (int8_t)((int)(next(&seed) % 255) - 127);
	for (i = 0; i < 16; i++)
		w3[i] = (int8_t)((int)(next(&seed) % 255) - 127);
	for (i = 0; i < 32; i++) {
		b1[i] = (int32_t)(next(&seed) % 20001) - 10000;
		m1[i] = 1 << 20;
		s1[i] = 32;
	}
	for (i = 0; i < 16; i++) {
		b2[i] = (int32_t)(next(&seed) % 2001) - 1000;
		m2[i] = 1 << 22;
		s2[i] = 30;
	}
	b3[0] = 0;
	d.kind = QS_Q8_KIND_SCORER;
	d.schema = QS_SCHEMA_ROUTER_V1;
	d.name = argc > 3 ? argv[3] : "test-router";
	d.created = 1700000000;
	d.n_layers = 3;
	d.layer[0] = (struct qs_q8_layer_desc){16, 32, w1, b1, m1, s1};
	d.layer[1] = (struct qs_q8_layer_desc){32, 16, w2, b2, m2, s2};
	d.layer[2] = (struct qs_q8_layer_desc){16, 1, w3, b3, NULL, NULL};
	if (qs_q8_write_file(&d, argv[2], msg, sizeof(msg)) != QS_OK) {
		fprintf(stderr, "%s\n", msg);
		return 1;
	}
	return 0;
}
