/*
 * scriptset: the scripts the workers serve, as immutable snapshots, and
 * the hub that holds the current one.
 *
 * A scriptset is a snapshot of the scripts folder: for every script and
 * scripts/lib module, the source text being served, a version number, and
 * the last problem found with the file on disk. The reloader (reload.h)
 * builds snapshots and publishes them to the hub; each worker's Lua
 * runtime (loader.h) takes the hub's current snapshot at its next request
 * and compiles from it, never from the disk. Entries and snapshots are
 * reference-counted and shared between threads; once published nothing in
 * them changes.
 */
#ifndef CLIQHOST_SCRIPTSET_H
#define CLIQHOST_SCRIPTSET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

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

/* A snapshot: every entry, sorted by rel. The reloader builds one with
 * scriptset_new and fills it before it publishes it; after that it is
 * never changed. */
struct scriptset {
    atomic_int refs;
    unsigned long long modules_gen; /* changes when any lib/ module does */
    size_t n;
    struct script_src **e; /* sorted by rel */
};

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

struct reload_stats {
    unsigned long long reloads;  /* rescans that changed what is served */
    unsigned long long failures; /* files rejected */
    long long last_reload_at;    /* wall-clock ms; 0: none since start */
};

/* ---- the hub: the current snapshot, shared by the workers --------------- */

/* The reloader's own fields (scan_mu, next_version, writing) are read and
 * written only by reload.c, under scan_mu. */
struct scripts_hub {
    pthread_mutex_t mu; /* guards cur and stats */
    struct scriptset *cur;
    atomic_ullong gen;
    struct reload_stats stats;
    pthread_mutex_t scan_mu; /* one rescan at a time */
    unsigned long long next_version;
    int writing; /* the last rescan left a file being written (guarded by scan_mu) */
};

struct scripts_hub *scripts_hub_new(void);
void scripts_hub_free(struct scripts_hub *h);
/* Changes whenever a new snapshot is published. Cheap (one atomic load). */
unsigned long long scripts_hub_generation(const struct scripts_hub *h);
/* The current snapshot, held (release it). Its generation goes to *gen. */
struct scriptset *scripts_hub_acquire(struct scripts_hub *h, unsigned long long *gen);

void scripts_hub_stats(struct scripts_hub *h, struct reload_stats *out);

/* ---- building snapshots (the reloader) ---------------------------------- */

/* A new entry for `rel` with one reference. Caller releases. */
struct script_src *script_src_new(const char *rel);
/* A private copy of e to change before it is published. Caller releases. */
struct script_src *script_src_copy(const struct script_src *e);
/* Adds a reference to e and returns it. */
struct script_src *script_src_hold(struct script_src *e);
/* Drops a reference; frees e at the last one. NULL is fine. */
void script_src_release(struct script_src *e);
/* Drops e's list of dependencies. */
void script_src_free_deps(struct script_src *e);
/* An empty snapshot with room for `cap` entries and one reference. */
struct scriptset *scriptset_new(size_t cap);
/* Makes `next` the current snapshot (takes the caller's reference) and
 * releases the old one; `changed`: what is served changed (counted as a
 * reload); `failures`: files rejected by this rescan. */
void scripts_hub_publish(struct scripts_hub *h, struct scriptset *next, int changed, int failures);

#endif
