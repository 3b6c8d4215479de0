/*
 * replay_q8.c - runs the fuzz target over the seed corpus without libFuzzer, so every
 * ordinary build (gcc included) exercises it: each file goes through
 * LLVMFuzzerTestOneInput, and files named ok-* must load while bad-* must be refused.
 * Fails on an empty or unreadable corpus so the test cannot pass by finding nothing.
 * Usage: replay-q8 CORPUS_DIR...
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_q8.h"
#include "qsteer/policy.h"

static int
replay_dir(const char *dir, int *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int bad = 0;

	if (!d) {
		fprintf(stderr, "replay-q8: cannot open %s\n", dir);
		return 1;
	}
	while ((e = readdir(d))) {
		char path[4096], msg[256];
		struct qs_policy *p = NULL;
		uint8_t *buf;
		long len;
		FILE *f;
		int rc;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
			fprintf(stderr, "replay-q8: cannot read %s\n", path);
			bad = 1;
			if (f)
				fclose(f);
			continue;
		}
		buf = malloc(len ? (size_t)len : 1);
		if (!buf || fread(buf, 1, (size_t)len, f) != (size_t)len) {
			fprintf(stderr, "replay-q8: cannot read %s\n", path);
			bad = 1;
		} else {
			LLVMFuzzerTestOneInput(buf, (size_t)len);
			rc =
			    qs_policy_load(buf, (size_t)len, e->d_name, NULL, &p, msg, sizeof(msg));
			if (rc == QS_OK)
				qs_policy_free(p);
			if (strncmp(e->d_name, "ok-", 3) == 0 && rc != QS_OK) {
				fprintf(stderr, "replay-q8: %s must load: %s\n", path, msg);
				bad = 1;
			} else if (strncmp(e->d_name, "bad-", 4) == 0 && rc == QS_OK) {
				fprintf(stderr, "replay-q8: %s must be refused but loads\n", path);
				bad = 1;
			}
			printf("%-28s %s\n", e->d_name, rc == QS_OK ? "ok" : msg);
			(*n)++;
		}
		free(buf);
		fclose(f);
	}
	closedir(d);
	return bad;
}

int
main(int argc, char **argv)
{
	int n = 0, bad = 0;

	for (int i = 1; i < argc; i++)
		bad |= replay_dir(argv[i], &n);
	printf("replay-q8: %d files\n", n);
	if (n == 0) {
		fprintf(stderr, "replay-q8: no corpus files\n");
		return 1;
	}
	return bad;
}
