/* Scale-out of `ddps score`: how this process was launched (mpirun, srun,
 * a Slurm job array) and the MPI job that scores one dataset over many
 * processes into one store (pipeline/shard.h has the shares and the merge).
 *
 * MPI is optional: a build without Open MPI still runs everything, and says
 * so when started by mpirun/srun with more than one process. */
#ifndef DDPS_CLI_SCALE_H
#define DDPS_CLI_SCALE_H

#include "pipeline/score.h"
#include "util/err.h"

/* Process count of the parallel launch this process is part of, from the
 * launchers' environment (OMPI_COMM_WORLD_SIZE of mpirun, PMI_SIZE of PMI-2,
 * SLURM_STEP_NUM_TASKS of srun); 1 when not launched in parallel. *how
 * (may be NULL) gets the variable's name. */
int ddps_launch_size(const char **how);
/* 1 when this ddps was built with MPI. */
int ddps_have_mpi(void);
/* The share of a Slurm job array task (SLURM_ARRAY_TASK_ID minus
 * SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT): 1 and *k, *n set when
 * running as a task of an array of more than one, else 0. */
int ddps_slurm_array_share(int *k, int *n);
/* CPU threads for one of local_size processes on this node: the cores it
 * is bound to when the launcher bound it to fewer than the node has, else
 * the node's cores divided by local_size (at least 1). */
int ddps_threads_for_local(int local_size);
/* "cuda" becomes "cuda:G" with G the local rank's GPU (local_rank modulo the
 * devices listed in CUDA_VISIBLE_DEVICES when set, else local_rank); any
 * other device (cpu, cuda:K) is kept. Writes into buf. */
const char *ddps_device_for_local(const char *device, int local_rank, char *buf, size_t n);

/* The MPI job (ddps score under mpirun/srun with an MPI build): every rank
 * scores its share into STORE.shard-R-of-N (resuming what it committed),
 * then rank 0 checks and copies the shards, every rank clusters its part of
 * the classes, and rank 0 writes the clusters and renames the result to
 * STORE. Rank 0 shows the whole job's progress; the others are quiet unless
 * -v. Returns the exit status (the same on every rank). */
int ddps_mpi_score(ddps_score_opts *o);

#endif
