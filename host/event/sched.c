/* sched: a worker's epoll loop with timers (see sched.h). */
#include "event/sched.h"

#include "core/mem.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Watchers live in an array indexed by fd. The epoll data carries the fd and
 * the watcher's generation, so an event for a watcher that was removed (or
 * replaced) earlier in the same batch is recognised and skipped. */
struct watcher {
    sched_fd_cb cb;
    void *ud;
    uint32_t gen;
    int active;
};

struct sched_timer {
    long long at; /* monotonic ms */
    uint64_t seq; /* ties fire in the order they were added */
    size_t slot;  /* index in the heap */
    sched_timer_cb cb;
    void *ud;
};

struct sched {
    int epfd;
    int stopfd;          /* eventfd: written by sched_stop() */
    atomic_int stopping; /* set by sched_stop() from any thread */
    sched_prepare_cb prepare;
    sched_after_cb after;
    void *ud;
    struct watcher *w; /* indexed by fd */
    size_t nw;
    uint32_t next_gen;
    struct sched_timer **heap; /* binary min-heap on (at, seq) */
    size_t nheap, heap_alloc;
    uint64_t next_seq;
    long long now;
};

#define STOP_TAG UINT64_MAX

long long sched_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long sched_now(const struct sched *s)
{
    return s->now;
}

struct sched *sched_new(sched_prepare_cb prepare, sched_after_cb after, void *ud)
{
    struct sched *s = xcalloc(1, sizeof *s);
    s->prepare = prepare;
    s->after = after;
    s->ud = ud;
    s->now = sched_clock_ms();
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->epfd < 0 || s->stopfd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP_TAG};
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
    for (size_t i = 0; i < s->nheap; i++)
        free(s->heap[i]);
    free(s->heap);
    free(s->w);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->stopfd >= 0)
        close(s->stopfd);
    free(s);
}

/* ---- watchers ---------------------------------------------------------- */

static struct watcher *slot_for(struct sched *s, int fd)
{
    if ((size_t)fd >= s->nw) {
        size_t n = s->nw ? s->nw : 64;
        while (n <= (size_t)fd)
            n *= 2;
        s->w = xrealloc(s->w, n * sizeof *s->w);
        for (size_t i = s->nw; i < n; i++)
            s->w[i] = (struct watcher){0};
        s->nw = n;
    }
    return &s->w[fd];
}

static uint64_t tag(int fd, uint32_t gen)
{
    return (uint64_t)gen << 32 | (uint32_t)fd;
}

int sched_watch(struct sched *s, int fd, uint32_t events, sched_fd_cb cb, void *ud)
{
    if (fd < 0) {
        errno = EBADF;
        return -1;
    }
    struct watcher *w = slot_for(s, fd);
    uint32_t gen = ++s->next_gen;
    struct epoll_event ev = {.events = events, .data.u64 = tag(fd, gen)};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    *w = (struct watcher){cb, ud, gen, 1};
    return 0;
}

int sched_modify(struct sched *s, int fd, uint32_t events, sched_fd_cb cb, void *ud)
{
    if (fd < 0 || (size_t)fd >= s->nw || !s->w[fd].active) {
        errno = ENOENT;
        return -1;
    }
    struct watcher *w = &s->w[fd];
    struct epoll_event ev = {.events = events, .data.u64 = tag(fd, w->gen)};
    if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &ev) < 0)
        return -1;
    w->cb = cb;
    w->ud = ud;
    return 0;
}

void sched_unwatch(struct sched *s, int fd)
{
    if (fd < 0 || (size_t)fd >= s->nw || !s->w[fd].active)
        return;
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
    s->w[fd].active = 0;
}

/* ---- timers ------------------------------------------------------------ */

static int before(const struct sched_timer *a, const struct sched_timer *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void heap_set(struct sched *s, size_t i, struct sched_timer *t)
{
    s->heap[i] = t;
    t->slot = i;
}

static void sift_up(struct sched *s, size_t i)
{
    struct sched_timer *t = s->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(t, s->heap[parent]))
            break;
        heap_set(s, i, s->heap[parent]);
        i = parent;
    }
    heap_set(s, i, t);
}

static void sift_down(struct sched *s, size_t i)
{
    struct sched_timer *t = s->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct sched_timer *best = t;
        if (l < s->nheap && before(s->heap[l], best)) {
            m = l;
            best = s->heap[l];
        }
        if (r < s->nheap && before(s->heap[r], best))
            m = r;
        if (m == i)
            break;
        heap_set(s, i, s->heap[m]);
        i = m;
    }
    heap_set(s, i, t);
}

/* Takes the timer at slot i out of the heap (does not free it). */
static void heap_remove(struct sched *s, size_t i)
{
    struct sched_timer *last = s->heap[--s->nheap];
    if (i == s->nheap)
        return;
    heap_set(s, i, last);
    if (i > 0 && before(last, s->heap[(i - 1) / 2]))
        sift_up(s, i);
    else
        sift_down(s, i);
}

struct sched_timer *sched_timer_add(struct sched *s, long long ms, sched_timer_cb cb, void *ud)
{
    struct sched_timer *t = xmalloc(sizeof *t);
    t->at = sched_clock_ms() + (ms > 0 ? ms : 0);
    t->seq = s->next_seq++;
    t->cb = cb;
    t->ud = ud;
    if (s->nheap == s->heap_alloc) {
        s->heap_alloc = s->heap_alloc ? s->heap_alloc * 2 : 64;
        s->heap = xrealloc(s->heap, s->heap_alloc * sizeof *s->heap);
    }
    s->heap[s->nheap] = t;
    t->slot = s->nheap++;
    sift_up(s, t->slot);
    return t;
}

void sched_timer_cancel(struct sched *s, struct sched_timer *t)
{
    if (!t)
        return;
    heap_remove(s, t->slot);
    free(t);
}

/* Fires every timer that is due. A callback may add or cancel timers. */
static void run_timers(struct sched *s)
{
    s->now = sched_clock_ms();
    while (s->nheap && s->heap[0]->at <= s->now) {
        struct sched_timer *t = s->heap[0];
        heap_remove(s, 0);
        sched_timer_cb cb = t->cb;
        void *ud = t->ud;
        free(t);
        cb(s, ud);
    }
}

/* ---- the loop ---------------------------------------------------------- */

void sched_stop(struct sched *s)
{
    s->stopping = 1;
    uint64_t one = 1;
    ssize_t rc = write(s->stopfd, &one, sizeof one);
    (void)rc; /* the counter can only overflow after 2^64 stops */
}

int sched_stopping(const struct sched *s)
{
    return s->stopping;
}

void sched_run_once(struct sched *s, int max_ms)
{
    struct epoll_event evs[128];
    int timeout = s->prepare ? s->prepare(s->ud) : -1;
    if (max_ms >= 0 && (timeout < 0 || timeout > max_ms))
        timeout = max_ms;
    if (s->nheap) {
        long long wait = s->heap[0]->at - sched_clock_ms();
        if (wait < 0)
            wait = 0;
        if (timeout < 0 || wait < timeout)
            timeout = (int)wait;
    }
    int n = epoll_wait(s->epfd, evs, 128, timeout);
    s->now = sched_clock_ms();
    for (int i = 0; i < n; i++) {
        uint64_t t = evs[i].data.u64;
        if (t == STOP_TAG) {
            /* Reset it, so a loop still turning after the stop (a drain)
             * does not spin. */
            uint64_t v;
            ssize_t rc = read(s->stopfd, &v, sizeof v);
            (void)rc;
            continue;
        }
        int fd = (int)(uint32_t)t;
        uint32_t gen = (uint32_t)(t >> 32);
        if ((size_t)fd >= s->nw || !s->w[fd].active || s->w[fd].gen != gen)
            continue; /* removed earlier in this batch */
        s->w[fd].cb(s, fd, evs[i].events, s->w[fd].ud);
    }
    run_timers(s);
    if (s->after)
        s->after(s->ud);
}

void sched_run(struct sched *s)
{
    while (!s->stopping)
        sched_run_once(s, -1);
}
