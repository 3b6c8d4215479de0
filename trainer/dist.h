/*
 * dist.h - rollouts over many processes (issue 14, scale): under mpirun, each rank
 * of MPI_COMM_WORLD steps its share of the environments (env.h, struct
 * qs_roll_dist) and the ranks exchange their collections after every rollout, so
 * every rank merges the same batch and takes the same update: the parameters stay
 * identical without being sent, and the bytes written (by rank 0 only) are those of
 * a single-process run with the same seed.
 *
 * Built with Open MPI when meson found it (-Dmpi, QSTEER_HAVE_MPI); otherwise
 * qs_dist_init says so and the trainer refuses --mpi.
 */
#ifndef QSTEER_TRAINER_DIST_H
#define QSTEER_TRAINER_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "env.h"

/* 1 when this build has MPI. */
int qs_dist_available(void);
/* MPI_Init and this process's rank and the number of ranks; QS_E_UNSUPPORTED
 * without MPI. */
int qs_dist_init(uint32_t *rank, uint32_t *ranks, char *msg, size_t msglen);
/* Spread r's environments over the ranks (r->dist). */
void qs_dist_attach(struct qs_roll *r, uint32_t rank, uint32_t ranks);
void qs_dist_finish(void);

#endif /* QSTEER_TRAINER_DIST_H */
