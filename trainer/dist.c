/*
 * dist.c - the MPI exchange of rollout collections (contract: dist.h).
 */
#include <stdlib.h>

#include "dist.h"
#include "util.h"

#ifdef QSTEER_HAVE_MPI
#include <mpi.h>

int
qs_dist_available(void)
{
	return 1;
}

int
qs_dist_init(uint32_t *rank, uint32_t *ranks, char *msg, size_t msglen)
{
	int r, n;

	if (MPI_Init(NULL, NULL) != MPI_SUCCESS)
		return qs_fail(msg, msglen, QS_E_IO, "MPI_Init failed");
	MPI_Comm_rank(MPI_COMM_WORLD, &r);
	MPI_Comm_size(MPI_COMM_WORLD, &n);
	*rank = (uint32_t)r;
	*ranks = (uint32_t)n;
	return QS_OK;
}

/*
 * Environment i's collection goes from its owner (i % ranks) to every rank: the
 * size, then the bytes, one broadcast each, in environment order, so every rank
 * issues the same collectives in the same order.
 */
static int
exchange(struct qs_roll *r, void *ctx, char *msg, size_t msglen)
{
	uint8_t *buf = NULL;
	size_t cap = 0;
	int rc = QS_OK;

	(void)ctx;
	for (uint32_t i = 0; i < r->n_env; i++) {
		uint32_t owner = i % r->dist.ranks;
		int mine = owner == r->dist.rank;
		uint64_t size = mine ? qs_roll_pack(r, i, NULL, 0) : 0;

		MPI_Bcast(&size, 1, MPI_UINT64_T, (int)owner, MPI_COMM_WORLD);
		if (size > cap) {
			uint8_t *p = realloc(buf, size);

			if (!p) {
				/* Every rank must still take part in the broadcasts. */
				MPI_Abort(MPI_COMM_WORLD, 1);
				return qs_fail(msg, msglen, QS_E_NOMEM,
					       "rollout exchange: %llu bytes",
					       (unsigned long long)size);
			}
			buf = p;
			cap = size;
		}
		if (mine)
			qs_roll_pack(r, i, buf, cap);
		if (size > (uint64_t)INT32_MAX) {
			MPI_Abort(MPI_COMM_WORLD, 1);
			return qs_fail(msg, msglen, QS_E_SIZE, "rollout exchange: %llu bytes",
				       (unsigned long long)size);
		}
		MPI_Bcast(buf, (int)size, MPI_BYTE, (int)owner, MPI_COMM_WORLD);
		if (!mine && rc == QS_OK)
			rc = qs_roll_unpack(r, i, buf, size, msg, msglen);
	}
	free(buf);
	/* A rank that refused a collection stops; so must the others, or they would
	 * wait for it in the next exchange. */
	{
		int bad = rc != QS_OK, any = 0;

		MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
		if (any && rc == QS_OK)
			rc = qs_fail(msg, msglen, QS_E_VALUE,
				     "rollout exchange: another rank refused a collection");
	}
	return rc;
}

void
qs_dist_attach(struct qs_roll *r, uint32_t rank, uint32_t ranks)
{
	r->dist.rank = rank;
	r->dist.ranks = ranks;
	r->dist.exchange = exchange;
	r->dist.ctx = NULL;
}

void
qs_dist_finish(void)
{
	MPI_Finalize();
}

#else

int
qs_dist_available(void)
{
	return 0;
}

int
qs_dist_init(uint32_t *rank, uint32_t *ranks, char *msg, size_t msglen)
{
	*rank = 0;
	*ranks = 1;
	return qs_fail(msg, msglen, QS_E_UNSUPPORTED,
		       "this qsteer-train was built without MPI (meson -Dmpi=enabled, Debian's "
		       "libopenmpi-dev)");
}

void
qs_dist_attach(struct qs_roll *r, uint32_t rank, uint32_t ranks)
{
	(void)r;
	(void)rank;
	(void)ranks;
}

void
qs_dist_finish(void)
{
}

#endif
