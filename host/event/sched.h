/*
 * sched: a worker's event loop.
 *
 * One epoll set per worker thread, with timers. File descriptors are
 * watched with a callback; timers fire a callback once at a monotonic time.
 * Before each wait the owner's `prepare` hook says how long the loop may
 * sleep at most (libmicrohttpd's timeout); the loop also wakes for its next
 * timer. After each turn the `after` hook runs (the worker resumes
 * connections and flushes its log lines there). sched_stop() is the one
 * call that is safe from another thread; everything else belongs to the
 * loop's thread.
 */
#ifndef CLIQHOST_SCHED_H
#define CLIQHOST_SCHED_H

#include <stdint.h>

struct sched;
struct sched_timer;

typedef void (*sched_fd_cb)(struct sched *s, int fd, uint32_t events, void *ud);
typedef void (*sched_timer_cb)(struct sched *s, void *ud);
/* Returns the longest wait in ms (-1: no limit). */
typedef int (*sched_prepare_cb)(void *ud);
typedef void (*sched_after_cb)(void *ud);

/* Returns NULL if the kernel refuses an epoll set or eventfd. Caller frees. */
struct sched *sched_new(sched_prepare_cb prepare, sched_after_cb after, void *ud);
/* Frees the loop, its watchers and its pending timers (without calling
 * them); not the watched descriptors. */
void sched_free(struct sched *s);

/* Watches fd for `events` (EPOLLIN, ...). Returns 0 or -1 (errno set). */
int sched_watch(struct sched *s, int fd, uint32_t events, sched_fd_cb cb, void *ud);
/* Changes the events, callback and data of a watched fd. Returns 0 or -1. */
int sched_modify(struct sched *s, int fd, uint32_t events, sched_fd_cb cb, void *ud);
/* Stops watching fd. Safe to call from a watcher's own callback. */
void sched_unwatch(struct sched *s, int fd);

/* Calls cb(ud) once, `ms` milliseconds from now (0: on the next turn).
 * Returns a handle that stays valid until the timer fires or is
 * cancelled; it is owned by the loop. This function can't fail. */
struct sched_timer *sched_timer_add(struct sched *s, long long ms, sched_timer_cb cb, void *ud);
/* Cancels a timer that has not fired yet. NULL is allowed. */
void sched_timer_cancel(struct sched *s, struct sched_timer *t);

/* Monotonic milliseconds, read once per loop turn (cheap). */
long long sched_now(const struct sched *s);
/* Monotonic milliseconds read from the clock now. */
long long sched_clock_ms(void);

/* Runs until sched_stop() is called. */
void sched_run(struct sched *s);
/* Runs one turn: waits at most `max_ms` (or less for timers), handles
 * what is ready and returns. For draining at shutdown. */
void sched_run_once(struct sched *s, int max_ms);
/* Makes sched_run() return after its current turn. Thread-safe. */
void sched_stop(struct sched *s);
/* 1 once sched_stop() was called. */
int sched_stopping(const struct sched *s);

#endif
