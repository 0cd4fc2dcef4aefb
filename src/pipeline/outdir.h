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

/* `ddps report` writes into --out only when it creates it, or it is an
 * empty folder, or it holds DDPS_REPORT_MARK (a report ddps wrote there):
 * a user's own folder (index.html, style.css) is never overwritten. The
 * mark is written before anything else. *made: 1 when dir was created
 * here. -1 with one line otherwise. */
#define DDPS_REPORT_MARK ".ddps-report"
int ddps_outdir_claim_report(const char *dir, int *made, ddps_err *err);
/* After a failed run: removes dir when made and empty (the report's mark
 * aside, which goes with it). A folder holding output stays. */
void ddps_outdir_release(const char *dir, int made);

#endif
