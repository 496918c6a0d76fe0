/* sched: a worker's epoll loop (see sched.h). */
#include "sched.h"

#include "mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct watcher {
    int fd;
    sched_fd_cb cb;
    void *ud;
    struct watcher *next;
};

struct sched {
    int epfd;
    int stopfd;          /* eventfd: written by sched_stop() */
    atomic_int stopping; /* set by sched_stop() from any thread */
    sched_prepare_cb prepare;
    sched_after_cb after;
    void *ud;
    struct watcher *watchers;
};

struct sched *sched_new(sched_prepare_cb prepare, sched_after_cb after, void *ud)
{
    struct sched *s = xcalloc(1, sizeof *s);
    s->prepare = prepare;
    s->after = after;
    s->ud = ud;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->epfd < 0 || s->stopfd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->stopfd, &ev) < 0)
        goto fail;
    return s;
fail:
    sched_free(s);
    return NULL;
}

void sched_free(struct sched *s)
{
    if (!s)
        return;
    while (s->watchers) {
        struct watcher *w = s->watchers;
        s->watchers = w->next;
        free(w);
    }
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->stopfd >= 0)
        close(s->stopfd);
    free(s);
}

int sched_watch(struct sched *s, int fd, uint32_t events, sched_fd_cb cb, void *ud)
{
    struct watcher *w = xmalloc(sizeof *w);
    w->fd = fd;
    w->cb = cb;
    w->ud = ud;
    struct epoll_event ev = {.events = events, .data.ptr = w};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int e = errno;
        free(w);
        errno = e;
        return -1;
    }
    w->next = s->watchers;
    s->watchers = w;
    return 0;
}

void sched_unwatch(struct sched *s, int fd)
{
    for (struct watcher **p = &s->watchers; *p; p = &(*p)->next) {
        if ((*p)->fd == fd) {
            struct watcher *w = *p;
            epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
            *p = w->next;
            free(w);
            return;
        }
    }
}

void sched_stop(struct sched *s)
{
    s->stopping = 1;
    uint64_t one = 1;
    ssize_t rc = write(s->stopfd, &one, sizeof one);
    (void)rc; /* the counter can only overflow after 2^64 stops */
}

void sched_run(struct sched *s)
{
    struct epoll_event evs[64];
    while (!s->stopping) {
        int timeout = s->prepare ? s->prepare(s->ud) : -1;
        int n = epoll_wait(s->epfd, evs, 64, timeout);
        if (n < 0 && errno != EINTR)
            break;
        for (int i = 0; i < n; i++) {
            struct watcher *w = evs[i].data.ptr;
            if (!w)
                continue; /* the stop eventfd */
            w->cb(s, w->fd, evs[i].events, w->ud);
        }
        if (s->after)
            s->after(s->ud);
    }
}
