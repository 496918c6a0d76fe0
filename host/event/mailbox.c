/* mailbox: work handed to a loop's thread from any thread (see mailbox.h). */
#include "event/mailbox.h"

#include "core/mem.h"
#include "event/sched.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct message {
    mailbox_fn fn;
    mailbox_free_fn free_fn;
    void *arg;
    struct message *next;
};

struct mailbox {
    struct sched *sched;
    int fd;
    pthread_mutex_t lock;
    struct message *head, *tail;
};

/* Runs every message queued so far, outside the lock. */
static void on_ready(struct sched *s, int fd, uint32_t events, void *ud)
{
    (void)s;
    (void)events;
    struct mailbox *m = ud;
    uint64_t n;
    ssize_t r = read(fd, &n, sizeof n);
    (void)r; /* EAGAIN only means another turn already emptied it */
    pthread_mutex_lock(&m->lock);
    struct message *list = m->head;
    m->head = m->tail = NULL;
    pthread_mutex_unlock(&m->lock);
    while (list) {
        struct message *next = list->next;
        list->fn(list->arg);
        free(list);
        list = next;
    }
}

struct mailbox *mailbox_new(struct sched *s)
{
    struct mailbox *m = xcalloc(1, sizeof *m);
    m->sched = s;
    m->fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&m->lock, NULL);
    if (m->fd < 0 || sched_watch(s, m->fd, EPOLLIN, on_ready, m) < 0) {
        mailbox_free(m);
        return NULL;
    }
    return m;
}

void mailbox_free(struct mailbox *m)
{
    if (!m)
        return;
    if (m->fd >= 0) {
        sched_unwatch(m->sched, m->fd);
        close(m->fd);
    }
    while (m->head) {
        struct message *next = m->head->next;
        if (m->head->free_fn)
            m->head->free_fn(m->head->arg);
        free(m->head);
        m->head = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void mailbox_send(struct mailbox *m, mailbox_fn fn, mailbox_free_fn free_fn, void *arg)
{
    struct message *msg = xmalloc(sizeof *msg);
    msg->fn = fn;
    msg->free_fn = free_fn;
    msg->arg = arg;
    msg->next = NULL;
    pthread_mutex_lock(&m->lock);
    if (m->tail)
        m->tail->next = msg;
    else
        m->head = msg;
    m->tail = msg;
    pthread_mutex_unlock(&m->lock);
    uint64_t one = 1;
    ssize_t r = write(m->fd, &one, sizeof one);
    (void)r; /* the counter cannot overflow in practice */
}
