/* The MPI scoring job behind ddps_run_score with ddps_score_params.mpi
 * (`mpirun -n N ddps score ...`): every rank scores its share into
 * STORE.shard-R-of-N (resuming what it committed), then rank 0 checks and
 * copies the shards, every rank clusters its part of the classes, and rank
 * 0 writes the clusters and renames the result to STORE. Rank 0 reports the
 * whole job's progress through the calling thread's progress hook; the
 * other ranks report none.
 *
 * MPI is optional: a build without Open MPI still has these functions and
 * ddps_mpi_score fails (usage) saying so. */
#ifndef DDPS_PIPELINE_SCALE_MPI_H
#define DDPS_PIPELINE_SCALE_MPI_H

#include <stddef.h>

#include "pipeline/score.h"
#include "util/err.h"

/* 1 when built with MPI (DDPS_HAVE_MPI). */
int ddps_mpi_available(void);
/* Runs the job for o (o->store_path is STORE; shard fields ignored). Every
 * rank returns: 0, or -1 with err (its own failure, or the job's as rank 0
 * saw it). totals (may be NULL) gets this rank's scoring counts. */
int ddps_mpi_score(const ddps_score_opts *o, ddps_run_stats *totals, ddps_err *err);

/* CPU threads for one of local_size processes on this node: the cores it
 * is bound to when the launcher bound it to fewer than the node has, else
 * the node's cores divided by local_size (at least 1). */
int ddps_threads_for_local(int local_size);
/* "cuda" becomes "cuda:G" with G the local rank's GPU (local_rank modulo the
 * devices listed in CUDA_VISIBLE_DEVICES when set, else local_rank); any
 * other device (cpu, cuda:K) is kept. Writes into buf. */
const char *ddps_device_for_local(const char *device, int local_rank, char *buf, size_t n);

#endif
