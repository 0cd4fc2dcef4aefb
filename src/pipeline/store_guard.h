/* Guards around a store used by `ddps score` (score.c):
 *
 *   - one writer: ddps_store_lock takes an exclusive flock(2) on the store
 *     file (independent of SQLite's own fcntl locks, released by the kernel
 *     when the process dies, so a kill -9 leaves no stale lock). A second
 *     `score` on the same store is refused with one line instead of both
 *     computing everything;
 *   - the same checks as select: ddps_store_verify reads every class the
 *     way `ddps select` does (ddps_store_load_class without features), so
 *     a store that select would reject as corrupt is rejected by score too,
 *     with the same message, before any work. */
#ifndef DDPS_PIPELINE_STORE_GUARD_H
#define DDPS_PIPELINE_STORE_GUARD_H

#include "pipeline/store.h"
#include "util/err.h"

/* *fd: the locked descriptor; keep it open until after ddps_store_close
 * (closing any descriptor of the file earlier would drop SQLite's POSIX
 * locks), then ddps_store_unlock. */
int ddps_store_lock(const char *path, int *fd, ddps_err *err);
void ddps_store_unlock(int fd);
/* 1 when another process holds the store's writer lock (a `ddps score`
 * running on it), else 0 (also when the file cannot be opened). */
int ddps_store_writer_active(const char *path);
/* Removes path-wal and path-shm when no writer holds the store (see
 * ddps_store_writer_active) and the -wal is empty: the files a read-only
 * SQLite connection leaves behind (it may not delete them on close). */
void ddps_store_tidy_wal(const char *path);
int ddps_store_verify(ddps_store *s, ddps_err *err);

#endif
