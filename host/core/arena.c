/* arena: per-thread bump allocation for cJSON trees (see arena.h). */
#include "core/arena.h"

#include "core/mem.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdlib.h>

/* The first block is kept between requests; bigger trees add blocks that
 * are freed at close. */
#define BLOCK_SIZE (64 * 1024)
#define ALIGN      16

struct block {
    struct block *next;
    size_t size, used;
    _Alignas(ALIGN) unsigned char data[];
};

struct arena {
    int open;
    struct block *head; /* the block being filled; the kept block is last */
};

static _Thread_local struct arena tls;

/* Where allocations go while no arena is open: malloc, or a redirection. */
static _Thread_local struct {
    void *(*fn)(void *ud, void *p, size_t n);
    void *ud;
} redirect;

static struct block *new_block(size_t size)
{
    struct block *b = xmalloc(sizeof *b + size);
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

static void *arena_malloc(size_t n)
{
    if (!tls.open)
        return redirect.fn ? redirect.fn(redirect.ud, NULL, n) : malloc(n);
    n = (n + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    struct block *b = tls.head;
    if (!b || b->size - b->used < n) {
        struct block *nb = new_block(n > BLOCK_SIZE ? n : BLOCK_SIZE);
        nb->next = b;
        tls.head = nb;
        b = nb;
    }
    void *p = b->data + b->used;
    b->used += n;
    return p;
}

static void arena_free(void *p)
{
    if (!tls.open) {
        if (redirect.fn)
            redirect.fn(redirect.ud, p, 0);
        else
            free(p);
    }
    /* Inside an open arena, memory goes back at arena_close(). */
}

void arena_install_cjson_hooks(void)
{
    cJSON_Hooks hooks = {arena_malloc, arena_free};
    cJSON_InitHooks(&hooks);
}

void arena_open(void)
{
    tls.open = 1;
}

void arena_close(void)
{
    tls.open = 0;
    /* Free every block but the last (the first ever made), and empty it. */
    struct block *b = tls.head;
    while (b && b->next) {
        struct block *next = b->next;
        free(b);
        b = next;
    }
    tls.head = b;
    if (b)
        b->used = 0;
}

void arena_release(void)
{
    arena_close();
    free(tls.head);
    tls.head = NULL;
}

int arena_suspend(void)
{
    int was = tls.open;
    tls.open = 0;
    return was;
}

void arena_resume(int was_open)
{
    tls.open = was_open;
}

void arena_redirect(void *(*fn)(void *ud, void *p, size_t n), void *ud, void **was_fn,
                    void **was_ud)
{
    if (was_fn)
        *was_fn = (void *)redirect.fn;
    if (was_ud)
        *was_ud = redirect.ud;
    redirect.fn = fn;
    redirect.ud = ud;
}
