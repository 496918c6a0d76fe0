/*
 * reload: the scripts the workers serve, and live reload (DESIGN.md
 * "Scripts are data, reloaded live").
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

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

struct luavm_options;

/* One script or module as published. Immutable once in a snapshot. */
struct script_src {
    atomic_int refs; /* snapshots sharing it */
    char *rel;       /* "commands/deploy.lua", "lib/deploys.lua" */
    char *src;       /* the text served; NULL when no version ever loaded */
    size_t len;
    unsigned long long version; /* changes when src or a module it requires changes */
    long long loaded_at;        /* wall-clock ms the served version was taken; 0: none */
    char *error;                /* the last problem with the file, or NULL */
    long long error_at;
    char **deps; /* lib/ modules its top level required, directly */
    size_t ndeps;
    /* What the disk held when last looked at. */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
    uint64_t seen_hash; /* FNV-1a of the text last tried; 1: the file was gone */
};

struct scriptset;

/* The entry for `rel`, or NULL. */
const struct script_src *scriptset_find(const struct scriptset *s, const char *rel);
size_t scriptset_count(const struct scriptset *s);
/* Changes whenever any lib/ module changes: a worker then drops the modules
 * it loaded, so a script loaded again gets every module afresh (also one
 * that requires a module that changed). */
unsigned long long scriptset_modules_gen(const struct scriptset *s);
const struct script_src *scriptset_at(const struct scriptset *s, size_t i);
void scriptset_hold(struct scriptset *s);
void scriptset_release(struct scriptset *s);

/* ---- the hub: the current snapshot, shared by the workers --------------- */

struct scripts_hub;

struct scripts_hub *scripts_hub_new(void);
void scripts_hub_free(struct scripts_hub *h);
/* Changes whenever a new snapshot is published. Cheap (one atomic load). */
unsigned long long scripts_hub_generation(const struct scripts_hub *h);
/* The current snapshot, held (release it). Its generation goes to *gen. */
struct scriptset *scripts_hub_acquire(struct scripts_hub *h, unsigned long long *gen);

struct reload_stats {
    unsigned long long reloads;  /* rescans that changed what is served */
    unsigned long long failures; /* files rejected */
    long long last_reload_at;    /* wall-clock ms; 0: none since start */
};
void scripts_hub_stats(struct scripts_hub *h, struct reload_stats *out);

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
