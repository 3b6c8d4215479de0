/*
 * fuzz_parse.c - libFuzzer target for the dataplane's packet parser and everything
 * a frame reaches after it: parse, then a one-packet burst through the whole core
 * (reports into the backend table, decisions, request-id table, rewrite). Built
 * with clang -fsanitize=fuzzer when -Dfuzz=true; the same file with
 * QSTEER_FUZZ_REPLAY defined is a plain program that replays a corpus directory
 * (the gcc-built test in suite 'dp').
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qsteer/dp_core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct qs_dp_shared *sh;
static struct qs_dp_worker *wk;
static uint64_t now;

static void
init(void)
{
	struct qs_dp_config c;
	uint32_t i;

	qs_dp_config_defaults(&c);
	c.svc.has_ip4 = true;
	c.svc.ip4[0] = 10;
	c.svc.ip4[3] = 1;
	c.n_backends = 4;
	for (i = 0; i < 4; i++) {
		c.be[i].id = (uint16_t)(10 + i);
		c.be[i].has_ip4 = true;
		c.be[i].ip4[0] = 10;
		c.be[i].ip4[3] = (uint8_t)(20 + i);
		c.be[i].has_ip6 = i & 1;
		c.be[i].ip6[0] = 0xfd;
		c.be[i].port = 8000;
		c.be[i].capacity = 1;
		qs_dp_report_src_default(&c.be[i]);
		/* half the backends believe any source, so fuzzed reports reach the table */
		c.be[i].report_src.any = i & 1;
	}
	sh = aligned_alloc(64, (sizeof(*sh) + 63) & ~(size_t)63);
	wk = aligned_alloc(64, sizeof(*wk));
	qs_dp_shared_init(sh, &c);
	qs_dp_worker_init(wk, sh, QS_KERNEL_SCALAR, 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qs_dp_policy_set set = {0};
	struct qs_dp_pkt p;
	uint8_t *buf;
	uint32_t len;

	if (!sh)
		init();
	if (size > 65535)
		return 0;
	/* an exact-size heap copy, so ASan sees any read past the frame */
	buf = malloc(size ? size : 1);
	memcpy(buf, data, size);
	len = (uint32_t)size;
	qs_dp_parse(&sh->cfg, buf, len, &p);
	set.builtin = QS_BASELINE_ROUND_ROBIN;
	now += 1000000;
	qs_dp_process(wk, sh, &set, &buf, &len, 1, now);
	free(buf);
	return 0;
}

#ifdef QSTEER_FUZZ_REPLAY
int
main(int argc, char **argv)
{
	int i, n = 0;

	for (i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		struct dirent *e;

		if (!d) {
			perror(argv[i]);
			return 1;
		}
		while ((e = readdir(d)) != NULL) {
			char path[4096];
			uint8_t *b;
			FILE *f;
			size_t len;

			if (e->d_name[0] == '.')
				continue;
			b = malloc(65536);
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			f = fopen(path, "rb");
			if (!f) {
				perror(path);
				free(b);
				return 1;
			}
			len = fread(b, 1, 65536, f);
			fclose(f);
			LLVMFuzzerTestOneInput(b, len);
			/* and every truncation of it */
			while (len > 0)
				LLVMFuzzerTestOneInput(b, --len);
			free(b);
			n++;
		}
		closedir(d);
	}
	printf("replayed %d corpus files\n", n);
	return n > 0 ? 0 : 1;
}
#endif
