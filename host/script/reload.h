/*
 * reload: live reload of the scripts the workers serve (DESIGN.md "Scripts
 * are data, reloaded live"). It writes the snapshots of scriptset.h.
 *
 * A scriptset is an immutable snapshot of the scripts folder: for every
 * script and scripts/lib module, the source text being served, a version
 * number, and the last problem found with the file on disk. Workers never
 * read script files; they compile from the snapshot they hold, so what runs
 * is always a text that passed validation, whatever the disk holds a
 * moment later.
 *
 * A hub holds the current snapshot. One reloader thread watches the folder
 * (inotify, recursively, lib/ included), waits for a burst of changes to
 * settle, and then rescans: files whose size, times or inode changed are
 * read, and a changed file is compiled and its top level run in a scratch
 * Lua state. Only a script that loads and returns a table of functions
 * replaces the old one; a module change is taken only if every script that
 * requires it still loads with it, and those scripts get new versions (so
 * workers load them again with the new module). A file that fails keeps
 * its old version serving and its error is kept for the log and /status.
 * A deleted script leaves the snapshot (404). The new snapshot is then
 * published: workers see the new generation at their next request and
 * reload only the files whose version changed; requests already running
 * finish on the functions they started with.
 */
#ifndef CLIQHOST_RELOAD_H
#define CLIQHOST_RELOAD_H

#include <stddef.h>
#include <stdio.h>

#include "script/scriptset.h"

struct luavm_options;

/* ---- rescanning -------------------------------------------------------- */

/* Scans the scripts folder, validates what changed against the hub's
 * current snapshot and publishes the result. Logs each change and problem
 * (`initial`: the first load at start, worded as such). When `out` is not
 * NULL, every file's current problem (old ones too) is written there as
 * "file:line: message", and unknown handler names count as problems.
 * Returns the number of problems; *loaded (when not NULL) gets the number
 * of scripts served. */
int reload_scan(struct scripts_hub *h, const struct luavm_options *lo, int initial, FILE *out,
                int *loaded);

/* ---- the watcher ------------------------------------------------------- */

struct reloader;

/* Watches lo->scripts_dir and rescans into `h` after each burst of changes.
 * `settle_ms`: quiet time that ends a burst; a burst is cut at
 * 4 x settle_ms. Returns NULL with a reason in err. */
struct reloader *reloader_start(struct scripts_hub *h, const struct luavm_options *lo,
                                long settle_ms, char *err, size_t errlen);
/* Rescans with these settings from now on (SIGHUP). */
void reloader_set_options(struct reloader *r, const struct luavm_options *lo);
void reloader_stop(struct reloader *r);

#endif
