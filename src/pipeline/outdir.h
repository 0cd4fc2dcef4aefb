/* Guards for the folders `ddps select` writes into OUT (select.c).
 *
 * Ownership: an existing OUT/ipc<N> is replaced only when ddps wrote it,
 * i.e. it holds a manifest.json that is a JSON object with "ddps_version"
 * and "ipc" equal to N (every set ddps writes has one), or it is empty.
 * Anything else is refused with one line: ddps never deletes a folder it
 * did not write.
 *
 * Stale temporaries: a select killed while writing leaves
 * OUT/.ipc<N>.tmp-<pid> (or .ipc<N>.old-<pid> during the swap). Before
 * writing, entries of that exact form whose process no longer exists
 * (kill(pid, 0) fails with ESRCH) are removed; those of live processes are
 * left alone. */
#ifndef DDPS_PIPELINE_OUTDIR_H
#define DDPS_PIPELINE_OUTDIR_H

#include "util/err.h"

/* 0 when final does not exist, is empty, or is a set ddps wrote for ipc;
 * -1 with the reason otherwise. */
int ddps_outdir_may_replace(const char *final, int ipc, ddps_err *err);
/* Removes stale .ipc<N>.tmp-<pid> / .ipc<N>.old-<pid> folders of dead
 * processes in out_dir (any N); returns how many were removed. */
int ddps_outdir_clean_stale(const char *out_dir);

#endif
