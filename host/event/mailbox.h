/*
 * mailbox: hands work from any thread to one loop's thread.
 *
 * A mailbox belongs to a sched; mailbox_send() may be called from any
 * thread and wakes the loop (an eventfd), which then runs each message's
 * function in its own thread, in the order sent. This is how the outbox
 * thread and the workers talk without sharing anything else.
 */
#ifndef CLIQHOST_MAILBOX_H
#define CLIQHOST_MAILBOX_H

struct sched;
struct mailbox;

/* Runs in the loop's thread. Takes ownership of arg. */
typedef void (*mailbox_fn)(void *arg);
/* Frees an arg whose message was never run (the mailbox was freed first). */
typedef void (*mailbox_free_fn)(void *arg);

/* Returns NULL if the kernel refuses an eventfd. Caller frees. */
struct mailbox *mailbox_new(struct sched *s);
/* Frees the mailbox; messages not yet run are freed with their free_fn.
 * No thread may send to it any more. */
void mailbox_free(struct mailbox *m);

/* Queues fn(arg) to run in the mailbox's loop. Thread-safe; can't fail. */
void mailbox_send(struct mailbox *m, mailbox_fn fn, mailbox_free_fn free_fn, void *arg);

#endif
