/* How this `ddps` process was launched (mpirun, srun, a Slurm job array),
 * from the launchers' environment; the MPI job itself is in the library
 * (ddps_score_params.mpi). */
#ifndef DDPS_CLI_SCALE_H
#define DDPS_CLI_SCALE_H

/* Process count of the parallel launch this process is part of
 * (OMPI_COMM_WORLD_SIZE of mpirun, PMI_SIZE of PMI-2, SLURM_STEP_NUM_TASKS
 * of srun); 1 when not launched in parallel. *how (may be NULL) gets the
 * variable's name. */
int cli_launch_size(const char **how);
/* This process's rank in that launch (OMPI_COMM_WORLD_RANK, PMI_RANK,
 * SLURM_PROCID); 0 when unknown. */
int cli_launch_rank(void);
/* The share of a Slurm job array task (SLURM_ARRAY_TASK_ID minus
 * SLURM_ARRAY_TASK_MIN of SLURM_ARRAY_TASK_COUNT): 1 and *k, *n set when
 * running as a task of an array of more than one, else 0. */
int cli_slurm_array_share(int *k, int *n);
/* 1 when the command was started from a terminal even though stderr is a
 * pipe (mpirun forwards rank 0's stderr through one, gives stdout a pty,
 * and the job keeps the shell's controlling terminal; none in a batch job). */
int cli_launched_from_terminal(void);

#endif
