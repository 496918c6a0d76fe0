/*
 * arena: a per-thread bump allocator for cJSON's parse trees.
 *
 * A request body becomes a cJSON tree of a hundred small nodes that all die
 * together a few microseconds later. While a thread has its arena open,
 * cJSON's allocations come from it (a pointer bump each) and its frees do
 * nothing; arena_close() then releases everything at once. With no arena
 * open, cJSON uses malloc and free as usual.
 *
 * The one rule: a tree parsed while the arena is open must be finished with
 * before arena_close() on the same thread, and a tree parsed while it is
 * closed must not be freed while it is open (arena_suspend() lets code that
 * runs inside an open arena parse with malloc).
 */
#ifndef CLIQHOST_ARENA_H
#define CLIQHOST_ARENA_H

#include <stddef.h>

/* Installs the cJSON hooks. Call once, before any thread uses cJSON. */
void arena_install_cjson_hooks(void);

/* Opens the calling thread's arena for cJSON allocations. */
void arena_open(void);
/* Closes it and releases all it handed out. Keeps one block for reuse. */
void arena_close(void);

/* Frees the calling thread's arena entirely; call before the thread ends. */
void arena_release(void);

/* Pauses an open arena (cJSON uses malloc) and returns whether one was
 * open; arena_resume() with that value restores it. */
int arena_suspend(void);
void arena_resume(int was_open);

/* While no arena is open on the calling thread, sends cJSON's allocations
 * to fn instead of malloc: fn(ud, NULL, n) allocates n bytes (NULL: none),
 * fn(ud, p, 0) frees p. NULL goes back to malloc. The redirection in place
 * before is stored in *was_fn and *was_ud (when not NULL), to restore. */
void arena_redirect(void *(*fn)(void *ud, void *p, size_t n), void *ud, void **was_fn,
                    void **was_ud);

#endif
