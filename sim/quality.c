/*
 * quality.c - cascade routing's admissible sets and the lists that configure them
 * (include/qsteer/quality.h): one definition for the simulator, qsteer-dp and the
 * XDP loader, so a quality floor masks the same backends in all three.
 */
#include "qsteer/quality.h"

#include <errno.h>
#include <stdlib.h>

void
qs_quality_admissible(const double (*quality)[QS_DIFFICULTIES], uint32_t n,
		      const double floor[QS_QUALITY_SLO], int unmasked,
		      double best[QS_DIFFICULTIES], uint64_t ok[QS_QUALITY_SLO][QS_DIFFICULTIES])
{
	const uint32_t nb = n < 64 ? n : 64;
	uint32_t i, c, d;

	for (d = 0; d < QS_DIFFICULTIES; d++) {
		best[d] = 0;
		for (i = 0; i < nb; i++)
			if (quality[i][d] > best[d])
				best[d] = quality[i][d];
	}
	/* the best backend reaches floor x best for any floor <= 1: never empty */
	for (c = 0; c < QS_QUALITY_SLO; c++)
		for (d = 0; d < QS_DIFFICULTIES; d++) {
			ok[c][d] = 0;
			for (i = 0; i < nb; i++)
				if (unmasked || quality[i][d] >= floor[c] * best[d])
					ok[c][d] |= 1ull << i;
		}
}

int
qs_quality_parse_list(const char *v, double out[QS_DIFFICULTIES])
{
	const char *p = v;
	uint32_t k = 0;

	for (;;) {
		char *end;
		double d;

		while (*p == ' ' || *p == '\t')
			p++;
		errno = 0;
		d = strtod(p, &end);
		if (end == p || errno || !(d >= 0 && d <= 1) || k == QS_DIFFICULTIES)
			return -1;
		out[k++] = d;
		p = end;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		if (*p++ != ',')
			return -1;
	}
	for (; k < QS_DIFFICULTIES; k++)
		out[k] = out[k - 1];
	return 0;
}
