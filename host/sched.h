/*
 * sched: a worker's event loop.
 *
 * One epoll set per worker thread. File descriptors are watched with a
 * callback; before each wait the owner's `prepare` hook says how long the
 * loop may sleep (libmicrohttpd's timeout), and after each turn the `after`
 * hook runs (the worker flushes its log lines there). sched_stop() is the
 * one call that is safe from another thread.
 */
#ifndef CLIQHOST_SCHED_H
#define CLIQHOST_SCHED_H

#include <stdint.h>

struct sched;

typedef void (*sched_fd_cb)(struct sched *s, int fd, uint32_t events, void *ud);
/* Returns the longest wait in ms (-1: no limit). */
typedef int (*sched_prepare_cb)(void *ud);
typedef void (*sched_after_cb)(void *ud);

/* Returns NULL if the kernel refuses an epoll set or eventfd. Caller frees. */
struct sched *sched_new(sched_prepare_cb prepare, sched_after_cb after, void *ud);
/* Frees the loop and its watchers (not the watched descriptors). */
void sched_free(struct sched *s);

/* Watches fd for `events` (EPOLLIN, ...). Returns 0 or -1 (errno set). */
int sched_watch(struct sched *s, int fd, uint32_t events, sched_fd_cb cb, void *ud);
/* Stops watching fd. */
void sched_unwatch(struct sched *s, int fd);

/* Runs until sched_stop() is called. */
void sched_run(struct sched *s);
/* Makes sched_run() return after its current turn. Thread-safe. */
void sched_stop(struct sched *s);

#endif
