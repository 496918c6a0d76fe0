/* vm: the Lua state, its heap, the limits and the tasks (see vm.h). */
#include "script/vm.h"

#include "cliq/request.h"
#include "core/buf.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "core/mem.h"
#include "event/sched.h"
#include "script/bind_json.h"
#include "script/scriptset.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

const char vm_key_scripts = 'c';
const char vm_key_versions = 'v';
const char vm_key_task_threads = 'h';
const char vm_key_string_mt = 's';
const char vm_key_strings = 'S';

static void limit_hook(lua_State *L, lua_Debug *ar);
static void work_check(struct luavm *vm);
static enum luavm_limit clock_limit(struct luavm *vm);

/* The thread whose code runs now: a coroutine the script resumed, the
 * task's own coroutine, or the main thread (a script's top level). */
static lua_State *running_thread(const struct luavm *vm)
{
    if (vm->running)
        return vm->running;
    return vm->current ? vm->current->co : vm->L;
}

/* The least memory kept above the cap for the host's own use (see vm_alloc). */
#define MEMORY_RESERVE_MIN (4u << 20)

/* ---- the heap ---------------------------------------------------------- */

/* Each block of the Lua heap starts with a tag (8 bytes: Lua's own
 * alignment is 8) naming the task whose code made it and the script
 * (realm) it ran in, each as an entry of vm->owners and the low bits of the
 * entry's generation; a stale one (the task ended, the version unloaded)
 * counts for nobody. Blocks of the host's own count for entry 0. */
struct heap_tag {
    uint32_t task;
    uint32_t realm;
};
#define TAG_SIZE sizeof(struct heap_tag)
#define IDX_BITS 20
#define IDX_MASK ((1u << IDX_BITS) - 1)
#define GEN_MASK 0xfffu

/* ---- small blocks ------------------------------------------------------
 *
 * A call makes and drops some seventy small blocks (strings, tables and
 * their parts), most of which the collector frees soon after. Each VM
 * keeps its freed blocks of up to VM_SMALL_MAX bytes in a list per size
 * class and carves new ones from 64 KiB chunks, so that most allocations
 * are a pop and most frees a push, without malloc's bookkeeping; a VM is
 * one worker's, so nothing is shared. The chunks are freed with the VM.
 * Accounting is unchanged: it counts the sizes Lua asks for. Off under
 * AddressSanitizer, which must see every block. */
#if defined(__SANITIZE_ADDRESS__)
#define VM_SMALL_BLOCKS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VM_SMALL_BLOCKS 0
#endif
#endif
#ifndef VM_SMALL_BLOCKS
#define VM_SMALL_BLOCKS 1
#endif
#define VM_CHUNK_BYTES (64 * 1024)

struct vm_small {
    struct vm_small *next;
};
struct vm_chunk {
    struct vm_chunk *next;
    max_align_t align; /* blocks start after this, aligned as malloc's */
};

/* The class of a block of n bytes (n <= VM_SMALL_MAX). */
static unsigned small_class(size_t n)
{
    return (unsigned)((n + 15) / 16 - 1);
}

static void *small_take(struct luavm *vm, unsigned c)
{
    struct vm_small *b = vm->small[c];
    if (b) {
        vm->small[c] = b->next;
        return b;
    }
    size_t size = (size_t)(c + 1) * 16;
    if ((size_t)(vm->carve_end - vm->carve) < size) {
        struct vm_chunk *ch = malloc(VM_CHUNK_BYTES);
        if (!ch)
            return NULL;
        /* What is left of the last chunk goes to the lists, largest first. */
        while (vm->carve_end - vm->carve >= 16) {
            size_t left = (size_t)(vm->carve_end - vm->carve);
            unsigned k = small_class(left > VM_SMALL_MAX ? VM_SMALL_MAX : left & ~(size_t)15);
            struct vm_small *f = (struct vm_small *)(void *)vm->carve;
            f->next = vm->small[k];
            vm->small[k] = f;
            vm->carve += (size_t)(k + 1) * 16;
        }
        ch->next = vm->chunks;
        vm->chunks = ch;
        vm->carve = (char *)&ch->align;
        vm->carve_end = (char *)ch + VM_CHUNK_BYTES;
    }
    void *p = vm->carve;
    vm->carve += size;
    return p;
}

static void small_put(struct luavm *vm, void *p, unsigned c)
{
    struct vm_small *b = p;
    b->next = vm->small[c];
    vm->small[c] = b;
}

/* realloc for the heap's blocks: osize is p's size (0 when p is NULL),
 * nsize > 0. On failure p is left as it was. */
static void *block_realloc(struct luavm *vm, void *p, size_t osize, size_t nsize)
{
    if (!VM_SMALL_BLOCKS)
        return realloc(p, nsize);
    int oc = p && osize <= VM_SMALL_MAX ? (int)small_class(osize) : -1;
    int nc = nsize <= VM_SMALL_MAX ? (int)small_class(nsize) : -1;
    if (p && oc < 0 && nc < 0)
        return realloc(p, nsize);
    if (p && oc == nc)
        return p;
    void *q = nc >= 0 ? small_take(vm, (unsigned)nc) : malloc(nsize);
    if (!q || !p)
        return q;
    memcpy(q, p, osize < nsize ? osize : nsize);
    if (oc >= 0)
        small_put(vm, p, (unsigned)oc);
    else
        free(p);
    return q;
}

static void block_free(struct luavm *vm, void *p, size_t size)
{
    if (VM_SMALL_BLOCKS && size <= VM_SMALL_MAX)
        small_put(vm, p, small_class(size));
    else
        free(p);
}

static void small_free_all(struct luavm *vm)
{
    while (vm->chunks) {
        struct vm_chunk *ch = vm->chunks;
        vm->chunks = ch->next;
        free(ch);
    }
}

static void on_evict(struct sched *s, void *ud);

static uint32_t tag_of(const struct luavm *vm, unsigned i)
{
    return i && i <= IDX_MASK ? i | (vm->owners[i].gen & GEN_MASK) << IDX_BITS : 0;
}

/* The live entry a tag names, or NULL. */
static struct vm_owner *entry_of(struct luavm *vm, uint32_t tag)
{
    unsigned i = tag & IDX_MASK;
    if (!i || i >= vm->nowners || (vm->owners[i].gen & GEN_MASK) != tag >> IDX_BITS)
        return NULL;
    return &vm->owners[i];
}

static void sub_bytes(size_t *v, size_t n)
{
    *v = *v > n ? *v - n : 0;
}

/* Counts n bytes for a task and its realm (either may be NULL: none). */
static void charge(struct luavm *vm, struct vm_owner *t, struct vm_owner *r, size_t n)
{
    if (t)
        t->bytes += n;
    if (r) {
        r->bytes += n;
        if (t)
            r->task_bytes += n;
    }
    if (!t && !r)
        vm->owners[0].bytes += n;
}

/* Gives back n bytes counted for a task and its realm (either may be NULL:
 * none, or no longer there); `host`: the block was the host's. */
static void credit(struct luavm *vm, struct vm_owner *t, struct vm_owner *r, size_t n, int host)
{
    if (t)
        sub_bytes(&t->bytes, n);
    if (r) {
        sub_bytes(&r->bytes, n);
        if (t)
            sub_bytes(&r->task_bytes, n);
    }
    if (host)
        sub_bytes(&vm->owners[0].bytes, n);
}

/* credit() for the block a tag heads. */
static void credit_tag(struct luavm *vm, const struct heap_tag *tag, size_t n)
{
    credit(vm, entry_of(vm, tag->task), entry_of(vm, tag->realm), n, !tag->task && !tag->realm);
}

/* What a realm holds beyond its running tasks' own: its module state. */
static size_t realm_bytes(const struct vm_owner *r)
{
    return r->bytes > r->task_bytes ? r->bytes - r->task_bytes : 0;
}

/* The realm (not `except`) that holds the most, with its size in *bytes. */
static unsigned biggest_realm(struct luavm *vm, unsigned except, size_t *bytes)
{
    unsigned big = 0;
    *bytes = 0;
    for (unsigned i = 1; i < vm->nowners; i++)
        if (vm->owners[i].script && i != except && realm_bytes(&vm->owners[i]) > *bytes) {
            big = i;
            *bytes = realm_bytes(&vm->owners[i]);
        }
    return big;
}

/* The waiting task (not `except`) that holds the most of the heap. */
static struct luavm_task *biggest_waiting(struct luavm *vm, const struct luavm_task *except)
{
    struct luavm_task *big = NULL;
    for (struct luavm_task *t = vm->tasks; t; t = t->next)
        if (t != except && (!big || vm->owners[t->owner].bytes > vm->owners[big->owner].bytes))
            big = t;
    return big;
}

/* Whether an allocation of `grow` more bytes by the running code may go
 * ahead past the worker's cap: only when a waiting task holds more than the
 * running one. That task is then stopped (from the loop, as soon as this
 * slice ends) and until it is, the running code may use as much as it
 * holds above the cap: the heap never holds more than twice the cap. */
static int evict_for(struct luavm *vm, size_t grow)
{
    struct luavm_task *t = vm->current;
    if (!t || !vm->opt.sched)
        return 0;
    if (!vm->evicting && !vm->evicting_realm) {
        /* The biggest holder that is not the running code: a waiting task,
         * or a script's module state (not the running task's script). */
        size_t mine = vm->owners[t->owner].bytes, rbytes;
        struct luavm_task *big = biggest_waiting(vm, t);
        size_t tbytes = big ? vm->owners[big->owner].bytes : 0;
        unsigned realm = biggest_realm(vm, t->realm, &rbytes);
        if (realm && rbytes > mine && rbytes > tbytes) {
            vm->evicting_realm = realm;
            vm->evicting_realm_gen = vm->owners[realm].gen;
        } else if (big && tbytes > mine) {
            vm->evicting = big;
        } else {
            return 0;
        }
        vm->evict_timer = sched_timer_add(vm->opt.sched, 0, on_evict, vm);
    }
    size_t going = vm->evicting ? vm->owners[vm->evicting->owner].bytes
                                : realm_bytes(&vm->owners[vm->evicting_realm]);
    return vm->mem + grow <= vm->opt.max_memory + going;
}

/* Refuses an allocation to running code. Lua's own allocations answer a
 * refusal with an emergency collection and ask again for the same block:
 * if that retry succeeds, the heap only held garbage and nothing happened.
 * Any other outcome (the retry refused too, or no retry: the refusal raised
 * a memory error in the script) means the script holds too much, and the
 * limit hook stops it at its next instruction (lua_sethook only sets
 * fields: safe from here). */
static void *refuse(struct luavm *vm, void *ptr, size_t nsize, int budget)
{
    if (vm->slice_start) {
        vm->over_budget = budget;
        if (vm->refused_size && (vm->refused_ptr != ptr || vm->refused_size == nsize))
            vm->mem_exceeded = 1;
        vm->refused_ptr = ptr;
        vm->refused_size = nsize;
        lua_sethook(running_thread(vm), limit_hook, LUA_MASKCOUNT, 1);
    }
    return NULL;
}

/* Whose an allocation is: the running task's (and its script's); a
 * script's top level being run (its realm's entry); the task a binding's
 * answer is being built for (vm->charging); or the host's (none). */
static void owners_now(const struct luavm *vm, unsigned *task, unsigned *realm)
{
    const struct luavm_task *t = vm->slice_start ? vm->current : vm->charging;
    *task = t ? t->owner : 0;
    *realm = t ? (vm->owners[t->realm].gen == t->realm_gen ? t->realm : 0)
               : (vm->slice_start ? vm->load_owner : 0);
}

static void *vm_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct luavm *vm = ud;
    struct heap_tag *tag = ptr ? (struct heap_tag *)ptr - 1 : NULL;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        if (tag) {
            credit_tag(vm, tag, old);
            block_free(vm, tag, old + TAG_SIZE);
        }
        vm->mem -= old;
        return NULL;
    }
    unsigned who, realm;
    owners_now(vm, &who, &realm);
    /* The budget is the task's, or a top level's (its realm's) while it runs. */
    struct vm_owner *mine = &vm->owners[who ? who : realm];
    size_t grow = nsize > old ? nsize - old : 0;
    /* The cap holds while script code runs, and for the answer a binding
     * builds for a task (which then gets nil, "out of memory"). The host's
     * own bookkeeping between slices (the script cache, a request object, a
     * limit message) may go into a reserve above it (and above what a task
     * being stopped for memory still holds), so it never meets a memory
     * error in a place that cannot take one. */
    size_t cap = vm->opt.max_memory;
    if (grow && cap && vm->mem + grow > cap) {
        if (vm->slice_start) {
            if (!evict_for(vm, grow))
                return refuse(vm, ptr, nsize, 0);
        } else if (vm->charging) {
            return NULL;
        } else {
            size_t reserve = cap / 4 > MEMORY_RESERVE_MIN ? cap / 4 : MEMORY_RESERVE_MIN;
            if (vm->evicting)
                reserve += vm->owners[vm->evicting->owner].bytes;
            else if (vm->evicting_realm)
                reserve += realm_bytes(&vm->owners[vm->evicting_realm]);
            if (vm->mem + grow > cap + reserve)
                return NULL;
        }
    }
    size_t budget = vm->opt.max_task_memory;
    if (grow && (who || realm) && budget && budget < cap && mine->bytes + grow > budget)
        return vm->slice_start ? refuse(vm, ptr, nsize, 1) : NULL;
    struct heap_tag *p = block_realloc(vm, tag, tag ? old + TAG_SIZE : 0, nsize + TAG_SIZE);
    if (!p)
        return NULL;
    /* The C functions that take long without running Lua code (a repeat,
     * a concat, a gsub) mostly write what they allocate: the bytes asked
     * for count as work, and the clock is read every VM_WORK_CHECK. */
    if (nsize > old && vm->slice_start) {
        vm->work += nsize;
        if (vm->work >= VM_WORK_CHECK)
            work_check(vm);
    }
    if (vm->refused_size && nsize > old) {
        if (vm->refused_ptr != ptr || vm->refused_size != nsize)
            vm->mem_exceeded = 1; /* not the retry: the refusal raised */
        vm->refused_size = 0;
        vm->refused_ptr = NULL;
    }
    if (tag) /* the tag moved with the block */
        credit_tag(vm, p, old);
    charge(vm, who ? &vm->owners[who] : NULL, realm ? &vm->owners[realm] : NULL, nsize);
    p->task = tag_of(vm, who);
    p->realm = tag_of(vm, realm);
    vm->mem = vm->mem - old + nsize;
    return p + 1;
}

/* A new entry in vm->owners. */
static unsigned owner_take(struct luavm *vm)
{
    unsigned i = vm->free_owner;
    if (i) {
        vm->free_owner = vm->owners[i].next;
    } else {
        i = vm->nowners++;
        if (i >= 16 && (i & (i - 1)) == 0) /* full: 16, 32, 64, ... entries */
            vm->owners = xrealloc(vm->owners, 2 * (size_t)i * sizeof *vm->owners);
        vm->owners[i].gen = 0;
    }
    vm->owners[i].bytes = 0;
    vm->owners[i].next = 0;
    vm->owners[i].script = NULL;
    vm->owners[i].task_bytes = 0;
    return i;
}

/* Puts an entry back on the free list; blocks still tagged with it are
 * the host's from now on. */
static void owner_free(struct luavm *vm, unsigned i)
{
    struct vm_owner *o = &vm->owners[i];
    free(o->script);
    o->script = NULL;
    o->gen++;
    o->next = vm->free_owner;
    vm->free_owner = i;
}

/* Ends an entry. Its blocks now count for nobody (a realm's, for the
 * host; see heap_tag). */
static void owner_release(struct luavm *vm, unsigned i)
{
    if (i)
        owner_free(vm, i);
}

/* The live realm entry of a task, or NULL. */
static struct vm_owner *task_realm(struct luavm *vm, const struct luavm_task *t)
{
    if (!t->realm || t->realm >= vm->nowners || vm->owners[t->realm].gen != t->realm_gen)
        return NULL;
    return &vm->owners[t->realm];
}

/* Ends a task's entry: what it still holds (stored in its module's table,
 * say) is its script's module state from now on. */
static void owner_retire(struct luavm *vm, struct luavm_task *t)
{
    if (!t->owner)
        return;
    struct vm_owner *r = task_realm(vm, t);
    if (r)
        sub_bytes(&r->task_bytes, vm->owners[t->owner].bytes);
    owner_free(vm, t->owner);
}

unsigned vm_realm_keep(struct luavm *vm, const char *script, unsigned *gen)
{
    unsigned i = vm->kept_owner;
    vm->kept_owner = 0;
    if (i) {
        vm->owners[i].script = xstrdup(script);
        *gen = vm->owners[i].gen;
    }
    return i;
}

void vm_realm_drop(struct luavm *vm, unsigned realm, unsigned gen)
{
    if (realm && realm < vm->nowners && vm->owners[realm].gen == gen && vm->owners[realm].script)
        owner_release(vm, realm);
}

void vm_task_realm(struct luavm_task *t, unsigned realm, unsigned gen)
{
    t->realm = realm;
    t->realm_gen = gen;
}

void vm_push_weak_table(lua_State *L, const void *key)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, key);
}

size_t vm_task_memory(const struct luavm_task *t)
{
    return t->vm->owners[t->owner].bytes;
}

int vm_hold(struct luavm_task *t, size_t n)
{
    struct luavm *vm = t->vm;
    struct vm_owner *o = &vm->owners[t->owner];
    size_t cap = vm->opt.max_memory, budget = vm->opt.max_task_memory;
    if (cap && vm->mem + n > cap)
        return -1;
    if (budget && budget < cap && o->bytes + n > budget)
        return -1;
    vm->mem += n;
    charge(vm, o, task_realm(vm, t), n);
    return 0;
}

void vm_release(struct luavm_task *t, size_t n)
{
    struct luavm *vm = t->vm;
    vm->mem = vm->mem > n ? vm->mem - n : 0;
    credit(vm, &vm->owners[t->owner], task_realm(vm, t), n, 0);
}

/* ---- limits ------------------------------------------------------------ */

/* The limit hook measures the current slice (the time since the host last
 * resumed a task or started a script's top level) against max_cpu_ms. Once
 * a limit is tripped it re-arms itself to run on every instruction and
 * raises each time, so a pcall that catches the error cannot carry on:
 * the next instruction after it raises again, until the coroutine is dead.
 *
 * On a worker the watchdog (below) arms it on the running thread when the
 * slice passes its limit, and no hook rests on the threads meanwhile: with
 * any hook set, Lua 5.4 traces every instruction (0.8 µs of a small call).
 * Where no watchdog runs (check, the reloader, tests) it rests as a count
 * hook that runs every HOOK_COUNT VM instructions of any coroutine. */
#define HOOK_COUNT 2000

/* Sets the hook L has while no limit is tripped (see above). */
static void rest_hook(const struct luavm *vm, lua_State *L)
{
    if (vm->watched)
        lua_sethook(L, NULL, 0, 0);
    else
        lua_sethook(L, limit_hook, LUA_MASKCOUNT, HOOK_COUNT);
}

struct luavm *vm_of_state(lua_State *L)
{
    return *(struct luavm **)lua_getextraspace(L);
}

const char *vm_limit_reason(const struct luavm *vm, enum luavm_limit l, char *out, size_t n)
{
    switch (l) {
    case LIMIT_CPU:
        snprintf(out, n, "used more than %ld ms of CPU without pausing", vm->opt.max_cpu_ms);
        break;
    case LIMIT_MEMORY:
        if (vm->over_budget)
            snprintf(out, n, "used more memory than allowed (%zu MiB for one handler)",
                     vm->opt.max_task_memory >> 20);
        else
            snprintf(out, n, "used more memory than allowed (%zu MiB for the worker's scripts)",
                     vm->opt.max_memory >> 20);
        break;
    case LIMIT_TIME:
        if (vm->stopping)
            snprintf(out, n, "was still running when the host was shutting down");
        else
            snprintf(out, n, "ran longer than %ld ms", vm->opt.max_run_ms);
        break;
    default:
        snprintf(out, n, "broke a limit");
    }
    return out;
}

static const char *limit_name(enum luavm_limit l)
{
    return l == LIMIT_CPU ? "cpu" : l == LIMIT_MEMORY ? "memory" : l == LIMIT_TIME ? "time" : "";
}

/* The limit the clock says the running slice broke: CPU time, or the
 * host's shutdown deadline. */
static enum luavm_limit clock_limit(struct luavm *vm)
{
    long long now = sched_clock_ms();
    if (vm->opt.max_cpu_ms > 0 && now - vm->slice_start > vm->opt.max_cpu_ms)
        return LIMIT_CPU;
    long long stop = atomic_load_explicit(&vm->stop_at, memory_order_relaxed);
    if (stop && now >= stop) {
        vm->stopping = 1;
        return LIMIT_TIME;
    }
    return LIMIT_NONE;
}

static void limit_hook(lua_State *L, lua_Debug *ar)
{
    (void)ar;
    struct luavm *vm = vm_of_state(L);
    if (!vm->slice_start) {
        rest_hook(vm, L); /* armed as a slice ended */
        return;
    }
    if (vm->refused_size) {
        /* A refusal not retried by the time the script runs on: it raised. */
        vm->mem_exceeded = 1;
        vm->refused_size = 0;
        vm->refused_ptr = NULL;
    }
    if (vm->mem_exceeded && !vm->kill)
        vm->kill = LIMIT_MEMORY;
    /* A retry succeeded, or the watchdog's signal came as the slice it was
     * for ended (then the clock says this one is within its limit). */
    if (!vm->kill)
        rest_hook(vm, L);
    if (!vm->kill)
        vm->kill = clock_limit(vm);
    if (vm->kill) {
        /* Stop: yield straight back to the host, which drops the task.
         * A yield passes through pcall untouched, runs no more script code
         * and leaves the stack for the traceback. Where a yield is not
         * possible (inside a C call such as a gsub callback), raise instead,
         * on every instruction, until the code is back where it can yield. */
        lua_sethook(L, limit_hook, LUA_MASKCOUNT, 1);
        if (vm->current && L != vm->current->co)
            lua_sethook(vm->current->co, limit_hook, LUA_MASKCOUNT, 1);
        if (lua_isyieldable(L) && vm->current) {
            lua_yield(L, 0);
            return;
        }
        char why[160];
        luaL_error(L, "stopped: %s", vm_limit_reason(vm, vm->kill, why, sizeof why));
    }
}

/* From the allocator, which cannot raise: when the slice has used up
 * max_cpu_ms, marks it stopped and arms the hook of the running thread to
 * stop the code at its next instruction (lua_sethook only sets fields). */
static void work_check(struct luavm *vm)
{
    vm->work = 0;
    if (!vm->kill)
        vm->kill = clock_limit(vm);
    if (!vm->kill)
        return;
    lua_sethook(running_thread(vm), limit_hook, LUA_MASKCOUNT, 1);
    if (vm->current && running_thread(vm) != vm->current->co)
        lua_sethook(vm->current->co, limit_hook, LUA_MASKCOUNT, 1);
}

void vm_charge(lua_State *L, size_t units)
{
    struct luavm *vm = vm_of_state(L);
    if (!vm->slice_start)
        return;
    vm->work += units;
    if (vm->work >= VM_WORK_CHECK) {
        vm->work = 0;
        vm_check_cpu(L);
    }
}

int vm_resume(lua_State *co, lua_State *from, int nargs, int *nresults)
{
    struct luavm *vm = vm_of_state(co);
    lua_State *was = vm->running;
    vm->running = co;
    int st = lua_resume(co, from, nargs, nresults); /* never raises */
    vm->running = was;
    /* A limit that tripped while co ran stops the resumer too. */
    if (vm->kill)
        lua_sethook(from, limit_hook, LUA_MASKCOUNT, 1);
    return st;
}

int vm_close(lua_State *co, lua_State *from)
{
    struct luavm *vm = vm_of_state(co);
    lua_State *was = vm->running;
    vm->running = co;
#if LUA_VERSION_RELEASE_NUM >= 50406
    int st = lua_closethread(co, from); /* never raises */
#else
    (void)from;
    int st = lua_resetthread(co);
#endif
    vm->running = was;
    if (vm->kill)
        lua_sethook(from, limit_hook, LUA_MASKCOUNT, 1);
    return st;
}

void vm_check_cpu(lua_State *L)
{
    struct luavm *vm = vm_of_state(L);
    if (!vm->slice_start)
        return;
    if (!vm->kill)
        vm->kill = clock_limit(vm);
    if (!vm->kill)
        return;
    /* As the hook does once tripped: every instruction raises until the
     * code is dead, so a pcall around the C call cannot carry on. */
    lua_sethook(L, limit_hook, LUA_MASKCOUNT, 1);
    if (vm->current && L != vm->current->co)
        lua_sethook(vm->current->co, limit_hook, LUA_MASKCOUNT, 1);
    char why[160];
    luaL_error(L, "stopped: %s", vm_limit_reason(vm, vm->kill, why, sizeof why));
}

void vm_use_strings(struct luavm *vm, int idx)
{
    lua_State *L = vm->L;
    idx = idx ? lua_absindex(L, idx) : 0;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &vm_key_string_mt) != LUA_TTABLE) {
        lua_pop(L, 1); /* no sandbox yet */
        return;
    }
    lua_pushliteral(L, "__index");
    if (idx && lua_type(L, idx) == LUA_TTABLE)
        lua_pushvalue(L, idx);
    else
        lua_rawgetp(L, LUA_REGISTRYINDEX, &vm_key_strings);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

/* Starts a slice of script code: the CPU clock and the kill flag. */
void vm_slice_begin(struct luavm *vm)
{
    vm->kill = LIMIT_NONE;
    vm->over_budget = 0;
    vm->stopping = 0;
    vm->mem_exceeded = 0;
    vm->refused_size = 0;
    vm->refused_ptr = NULL;
    vm->work = 0;
    vm->running = NULL;
    if (!vm->current)
        vm->load_owner = owner_take(vm); /* a script's top level */
    /* What runs is set before the slice starts, for the watchdog's signal
     * handler (which reads them on this thread, between any two stores). */
    atomic_signal_fence(memory_order_seq_cst);
    long long now = sched_clock_ms();
    vm->slice_start = now ? now : 1;
    atomic_store_explicit(&vm->wd_deadline,
                          vm->opt.max_cpu_ms > 0 ? vm->slice_start + vm->opt.max_cpu_ms : LLONG_MAX,
                          memory_order_relaxed);
}

/* Ends a slice. Returns the limit that stopped it, if any. */
enum luavm_limit vm_slice_end(struct luavm *vm, int failed)
{
    enum luavm_limit k = vm->kill;
    /* Code that died of a refused allocation before the hook could look
     * broke the memory limit. */
    if (k == LIMIT_NONE && (vm->mem_exceeded || (failed && vm->refused_size)))
        k = LIMIT_MEMORY;
    vm->mem_exceeded = 0;
    vm->refused_size = 0;
    vm->refused_ptr = NULL;
    atomic_store_explicit(&vm->wd_deadline, 0, memory_order_relaxed);
    vm->slice_start = 0;
    atomic_signal_fence(memory_order_seq_cst);
    vm->kill = LIMIT_NONE;
    /* A top level's entry waits for vm_realm_keep (its script loaded) until
     * the next slice. */
    owner_release(vm, vm->kept_owner);
    vm->kept_owner = vm->load_owner;
    vm->load_owner = 0;
    vm_use_strings(vm, 0);
    if (k != LIMIT_NONE) {
        /* The main thread may have been re-armed to every instruction. */
        rest_hook(vm, vm->L);
        /* Give back what the stopped code held. */
        lua_gc(vm->L, LUA_GCCOLLECT);
    }
    return k;
}

/* ---- tasks ------------------------------------------------------------- */

/* The text the chat user sees for a failure: error_reply, or limit_reply
 * when a limit stopped the handler; "{id}" and "{reason}" are replaced. */
static void failure_text(const struct luavm *vm, const char *req_id, enum luavm_limit limit,
                         struct buf *out)
{
    char reason[160];
    const char *t = limit != LIMIT_NONE ? vm->opt.limit_reply : vm->opt.error_reply;
    for (;;) {
        const char *id = strstr(t, "{id}");
        const char *rs = strstr(t, "{reason}");
        const char *p = id && (!rs || id < rs) ? id : rs;
        if (!p)
            break;
        buf_add(out, t, (size_t)(p - t));
        if (p == id) {
            buf_adds(out, req_id);
            t = p + 4;
        } else {
            buf_adds(out, vm_limit_reason(vm, limit, reason, sizeof reason));
            t = p + 8;
        }
    }
    buf_adds(out, t);
}

/* Fills res with the reply the chat user sees when the handler failed. */
void vm_error_reply(struct luavm *vm, const struct request_dispatch *d, const char *req_id,
                    enum luavm_limit limit, struct luavm_result *res)
{
    res->failed = 1;
    res->limit = limit;
    free(res->body);
    res->body = NULL;
    res->len = 0;
    res->status = 200;
    if (d->type == request_type_schedule)
        return; /* nobody waits for a reply; the log line says why */
    if (d->type == request_type_hook) {
        /* The tool that called is told the script failed, and how to find
         * why in the log; never the script's message (it may hold what
         * the script read). */
        char why[300], reason[200];
        if (limit != LIMIT_NONE)
            snprintf(why, sizeof why, "the hook's script was stopped: %s",
                     vm_limit_reason(vm, limit, reason, sizeof reason));
        else
            snprintf(why, sizeof why, "the hook's script failed; the host's log has the details");
        res->status = 500;
        res->body = jsonw_error_body(why, req_id, &res->len);
        return;
    }
    struct buf msg;
    buf_init(&msg, 4096);
    failure_text(vm, req_id, limit, &msg);
    res->body = request_text_reply(d, msg.data ? msg.data : "", 1, &res->len);
    buf_free(&msg);
}

/* Logs a script failure: the message and, when there is one, the Lua
 * traceback, on one escaped line. */
void vm_log_failure(const char *req_id, const struct request_dispatch *d, const char *what,
                    enum luavm_limit limit, const char *msg, const char *traceback)
{
    struct buf b;
    buf_init(&b, LOG_LINE_MAX);
    log_kv(&b, "script", d->script, strlen(d->script));
    log_kv(&b, "handler", d->key, strlen(d->key));
    log_kv(&b, "failure", what, strlen(what));
    if (limit != LIMIT_NONE)
        log_kv(&b, "limit", limit_name(limit), strlen(limit_name(limit)));
    log_kv(&b, "error", msg, strlen(msg));
    if (traceback)
        log_kv(&b, "traceback", traceback, strlen(traceback));
    log_msg(LOG_ERROR, req_id, "%s", b.data + 1);
    buf_free(&b);
}

/* Copies n bytes of src into dst (cap bytes, always terminated) with
 * secrets masked first, so that a cut cannot leave part of one. */
static void copy_redacted(char *dst, size_t cap, const char *src, size_t n)
{
    char *tmp = xstrndup(src, n);
    log_redact(tmp, n);
    snprintf(dst, cap, "%s", tmp);
    free(tmp);
}

/* Copies the first line of msg into the result's error field. */
void vm_set_error(struct luavm_result *res, const char *msg)
{
    copy_redacted(res->error, sizeof res->error, msg, strcspn(msg, "\n"));
}

/* What finish_protected works on. */
struct finish_args {
    struct luavm_task *t;
    int status; /* lua_resume's */
    int nres;
    enum luavm_limit limit;
    const char *stopped; /* why the host stopped it; NULL: it ended by itself */
    struct luavm_result *res;
};

/* A hook's reply from what receive(req) returned (nres values on co): the
 * first is the body (a table as JSON, a string s as {"message": s},
 * nothing as {"ok": true}), the second the status (default 200). Runs in
 * protected mode. [-0, +0] */
static void hook_reply(struct luavm_task *t, lua_State *co, int nres, struct luavm_result *res)
{
    struct luavm *vm = t->vm;
    lua_State *L = vm->L;
    char err[512];
    int status = 200;
    err[0] = '\0';
    if (nres >= 2) {
        /* A number only: lua_tointegerx would also take the string "200",
         * which the kit (and a reader) sees as a mistake. */
        int isint = 0, isnum = lua_type(co, -nres + 1) == LUA_TNUMBER;
        lua_Integer st = isnum ? lua_tointegerx(co, -nres + 1, &isint) : 0;
        if (!lua_isnil(co, -nres + 1) && !isnum)
            snprintf(err, sizeof err,
                     "receive returned a %s as the status; use an integer from 200 to 599",
                     luaL_typename(co, -nres + 1));
        else if (isnum && (!isint || st < 200 || st > 599))
            snprintf(err, sizeof err,
                     "receive returned the status %.14g; use an integer from 200 to 599",
                     (double)lua_tonumber(co, -nres + 1));
        else if (isint)
            status = (int)st;
    }
    struct buf out;
    buf_init(&out, vm->opt.max_reply_bytes);
    int rc = 0;
    if (!err[0]) {
        if (nres > 0) {
            lua_pop(co, nres - 1);
            lua_xmove(co, L, 1);
        } else {
            lua_pushnil(L);
        }
        int type = lua_type(L, -1);
        if (type == LUA_TNIL) {
            rc = buf_adds(&out, "{\"ok\":true}") < 0 ? BIND_JSON_FULL : 0;
        } else if (type == LUA_TSTRING) {
            bind_json_new_object(L, 1);
            lua_insert(L, -2);
            lua_setfield(L, -2, "message");
            rc = bind_json_encode(L, -1, &out, "reply", err, sizeof err);
        } else if (type == LUA_TTABLE) {
            rc = bind_json_encode(L, -1, &out, "reply", err, sizeof err);
        } else {
            rc = BIND_JSON_BAD;
            snprintf(err, sizeof err,
                     "receive returned a %s; return a table (the JSON body), a string or "
                     "nothing, and optionally a status",
                     luaL_typename(L, -1));
        }
        lua_pop(L, 1);
        if (rc == BIND_JSON_FULL)
            snprintf(err, sizeof err, "reply is longer than max_reply_bytes (%zu)", out.max);
    }
    if (err[0]) {
        buf_free(&out);
        vm_log_failure(t->id, &t->d, "reply", LIMIT_NONE, err, NULL);
        vm_set_error(res, err);
        vm_error_reply(vm, &t->d, t->id, LIMIT_NONE, res);
        return;
    }
    res->status = status;
    res->body = buf_take(&out, &res->len);
}

/* Turns the end of a task's coroutine into its result, in protected mode
 * (tracebacks and encoding allocate). [-0, +0] */
static int finish_protected(lua_State *L)
{
    struct finish_args *a = lua_touserdata(L, 1);
    struct luavm_task *t = a->t;
    struct luavm *vm = t->vm;
    struct luavm_result *res = a->res;
    lua_State *co = t->co;
    if (a->status == LUA_YIELD) {
        vm_log_failure(t->id, &t->d, "yield", LIMIT_NONE,
                       "handler yielded outside a host call (coroutine.yield in the handler body)",
                       NULL);
        vm_set_error(res, "handler yielded outside a host call");
        vm_error_reply(vm, &t->d, t->id, LIMIT_NONE, res);
    } else if (a->status != LUA_OK || a->stopped) {
        /* The coroutine itself is only read, never changed: popping its
         * stack could run a pending __close. Not luaL_tolstring either: a
         * __tostring would run script code here, outside any limit. */
        const char *msg = a->stopped;
        if (!msg && (lua_type(co, -1) == LUA_TSTRING || lua_type(co, -1) == LUA_TNUMBER)) {
            lua_pushvalue(co, -1);
            lua_xmove(co, L, 1);
            msg = lua_tostring(L, -1);
        }
        if (!msg) {
            lua_pushfstring(L, "(error object is a %s value)", luaL_typename(co, -1));
            msg = lua_tostring(L, -1);
        }
        luaL_traceback(L, co, NULL, 0);
        vm_log_failure(t->id, &t->d, a->limit ? "limit" : "error", a->limit, msg,
                       lua_tostring(L, -1));
        const char *tb = lua_tostring(L, -1);
        copy_redacted(res->traceback, sizeof res->traceback, tb ? tb : "", tb ? strlen(tb) : 0);
        vm_set_error(res, msg);
        vm_error_reply(vm, &t->d, t->id, a->limit, res);
    } else if (t->d.type == request_type_schedule) {
        res->status = 200; /* what run() returned is not used */
    } else if (t->d.type == request_type_hook) {
        hook_reply(t, co, a->nres, res);
    } else {
        struct buf out;
        buf_init(&out, vm->opt.max_reply_bytes);
        char err[512];
        /* Move the first result to L, where the encoder keeps its slots. */
        if (a->nres > 0) {
            lua_pop(co, a->nres - 1);
            lua_xmove(co, L, 1);
        } else {
            lua_pushnil(L);
        }
        int rc = bind_json_encode_output(L, -1, &out, err, sizeof err);
        if (rc == BIND_JSON_BAD && lua_type(L, -1) != LUA_TTABLE && lua_type(L, -1) != LUA_TSTRING)
            snprintf(err, sizeof err,
                     "handler returned a %s; return a table (a message), a string or nothing",
                     luaL_typename(L, -1));
        else if (rc == BIND_JSON_FULL)
            snprintf(err, sizeof err, "reply is longer than max_reply_bytes (%zu)", out.max);
        if (rc < 0) {
            buf_free(&out);
            vm_log_failure(t->id, &t->d, "reply", LIMIT_NONE, err, NULL);
            vm_set_error(res, err);
            vm_error_reply(vm, &t->d, t->id, LIMIT_NONE, res);
        } else {
            res->status = 200;
            res->body = buf_take(&out, &res->len);
        }
    }
    return 0;
}

static void unlink_task(struct luavm_task *t)
{
    struct luavm *vm = t->vm;
    if (t->prev)
        t->prev->next = t->next;
    else if (vm->tasks == t)
        vm->tasks = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/* Frees a task and its coroutine. */
void vm_task_free(struct luavm_task *t)
{
    struct luavm *vm = t->vm;
    if (t->run_timer && vm->opt.sched)
        sched_timer_cancel(vm->opt.sched, t->run_timer);
    if (t->co) {
        /* The coroutine is left to the collector, not closed: closing would
         * run the __close of a failed handler's pending to-be-closed
         * variables, and after a limit stopped it Lua runs no hooks on that
         * thread any more, so nothing could stop a __close that loops.
         * Plain Lua does not close a dead coroutine either unless asked. */
        luaL_unref(vm->L, LUA_REGISTRYINDEX, t->ref);
    }
    luaL_unref(vm->L, LUA_REGISTRYINDEX, t->strings);
    owner_retire(vm, t);
    t->owner = 0;
    if (vm->evicting == t)
        vm->evicting = NULL;
    free(t->response_url);
    free(t);
}

/* Fills res for a task that ended (status and nres as lua_resume gave), or
 * that the host stopped (`stopped` says why). */
static void task_result(struct luavm_task *t, int status, int nres, enum luavm_limit limit,
                        const char *stopped, struct luavm_result *res)
{
    struct luavm *vm = t->vm;
    lua_State *L = vm->L;
    int top = lua_gettop(L);
    struct finish_args a = {t, status, nres, limit, stopped, res};
    if (!lua_checkstack(L, 4)) {
        vm_set_error(res, "out of Lua stack");
        vm_error_reply(vm, &t->d, t->id, limit, res);
        return;
    }
    lua_pushcfunction(L, finish_protected);
    lua_pushlightuserdata(L, &a);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        /* Only memory can fail here; answer without Lua. */
        vm_log_failure(t->id, &t->d, "error", limit, "out of memory while finishing the handler",
                       NULL);
        vm_set_error(res, "out of memory");
        vm_error_reply(vm, &t->d, t->id, limit != LIMIT_NONE ? limit : LIMIT_MEMORY, res);
    }
    lua_settop(L, top);
    res->responded = t->responded;
    res->response_url = t->response_url;
    res->cpu_ms = t->cpu_ms;
    res->peak_bytes = t->peak_bytes;
}

void vm_task_note_request(struct luavm_task *t, const char *kind, const char *method,
                          const char *url, long status, const char *error, double ms)
{
    if (!t || !t->note)
        return;
    struct buf b;
    buf_init(&b, 8192);
    buf_adds(&b, "{\"kind\":");
    jsonw_string(&b, kind, strlen(kind), JSONW_REPLACE, NULL);
    buf_adds(&b, ",\"method\":");
    jsonw_string(&b, method ? method : "", method ? strlen(method) : 0, JSONW_REPLACE, NULL);
    buf_adds(&b, ",\"url\":");
    jsonw_string(&b, url ? url : "", url ? strlen(url) : 0, JSONW_REPLACE, NULL);
    if (status > 0)
        buf_printf(&b, ",\"status\":%ld", status);
    else
        buf_adds(&b, ",\"status\":null");
    if (error && *error) {
        buf_adds(&b, ",\"error\":");
        jsonw_string(&b, error, strlen(error), JSONW_REPLACE, NULL);
    }
    buf_printf(&b, ",\"ms\":%.3f}", ms);
    if (b.data)
        t->note(t->note_ud, t->note_id, b.data, b.len);
    buf_free(&b);
}

double vm_ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

int vm_task_noted(const struct luavm_task *t)
{
    return t && t->note;
}

void vm_task_note(struct luavm_task *t, const char *json, size_t len)
{
    if (t && t->note)
        t->note(t->note_ud, t->note_id, json, len);
}

/* The log module's way to the running task's journal. */
static void note_log_line(void *ud, const char *json, size_t len)
{
    vm_task_note(ud, json, len);
}

/* Resumes the task's coroutine with nargs values on it. Returns 1 when the
 * task ended (res filled), 0 when it waits again. */
int vm_task_run(struct luavm_task *t, int nargs, struct luavm_result *res)
{
    struct luavm *vm = t->vm;
    snprintf(vm->logctx.req_id, sizeof vm->logctx.req_id, "%s", t->id);
    snprintf(vm->logctx.script, sizeof vm->logctx.script, "%s", t->d.script);
    vm->logctx.note = t->note ? note_log_line : NULL;
    vm->logctx.note_ud = t;
    vm->current = t;
    t->waiting = 0;
    if (!t->owner)
        t->owner = owner_take(vm);
    lua_rawgeti(vm->L, LUA_REGISTRYINDEX, t->strings);
    vm_use_strings(vm, -1);
    lua_pop(vm->L, 1);
    struct timespec c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &c0);
    vm_slice_begin(vm);
    int nres = 0;
    int st = lua_resume(t->co, vm->L, nargs, &nres);
    long long used_ms = sched_clock_ms() - vm->slice_start;
    enum luavm_limit limit = vm_slice_end(vm, st != LUA_OK && st != LUA_YIELD);
    clock_gettime(CLOCK_MONOTONIC, &c1);
    t->cpu_ms += (double)(c1.tv_sec - c0.tv_sec) * 1e3 + (double)(c1.tv_nsec - c0.tv_nsec) / 1e6;
    if (t->owner && t->owner < vm->nowners && vm->owners[t->owner].bytes > t->peak_bytes)
        t->peak_bytes = vm->owners[t->owner].bytes;
    vm->current = NULL;
    vm->logctx.note = NULL;
    vm->logctx.note_ud = NULL;
    vm->logctx.req_id[0] = '\0';
    vm->logctx.script[0] = '\0';
    if (st == LUA_YIELD && t->waiting && limit == LIMIT_NONE) {
        lua_pop(t->co, nres);
        return 0;
    }
    if (t->waiting) {
        /* A binding started work and then could not yield, or a limit
         * tripped as it yielded: stop the work before the task goes. */
        t->waiting = 0;
        if (t->cancel)
            t->cancel(t->cancel_ud);
    }
    char stopped[200];
    if (limit != LIMIT_NONE) {
        /* Stopped by a limit: the hook yielded (the stack is still there
         * for the traceback), or raised, or it tripped in the handler's
         * last instructions. */
        char why[160];
        snprintf(stopped, sizeof stopped, "stopped: %s",
                 vm_limit_reason(vm, limit, why, sizeof why));
        /* How far past the limit it ran, for the log (the user's reply
         * says only which limit). */
        if (limit == LIMIT_CPU)
            snprintf(stopped + strlen(stopped), sizeof stopped - strlen(stopped),
                     " (stopped after %lld ms)", used_ms);
        st = LUA_ERRRUN;
        nres = 0;
    }
    task_result(t, st, nres, limit, limit != LIMIT_NONE ? stopped : NULL, res);
    return 1;
}

/* Ends a waiting task: its done callback, then free. */
static void complete(struct luavm_task *t, struct luavm_result *res)
{
    unlink_task(t);
    t->vm->ntasks--;
    t->done(t, res, t->done_ud);
    free(res->body);
    vm_task_free(t);
}

/* Stops a waiting task for a limit; `why` says which and why. */
static void stop_waiting(struct luavm_task *t, enum luavm_limit limit, const char *why)
{
    if (t->waiting && t->cancel)
        t->cancel(t->cancel_ud);
    t->waiting = 0;
    char stopped[200];
    snprintf(stopped, sizeof stopped, "stopped: %s", why);
    struct luavm_result res;
    memset(&res, 0, sizeof res);
    task_result(t, LUA_ERRRUN, 0, limit, stopped, &res);
    complete(t, &res);
}

/* The run-time limit of a waiting task. */
static void on_run_timer(struct sched *s, void *ud)
{
    (void)s;
    struct luavm_task *t = ud;
    char why[160];
    t->run_timer = NULL;
    stop_waiting(t, LIMIT_TIME, vm_limit_reason(t->vm, LIMIT_TIME, why, sizeof why));
}

/* The waiting task that held the most when the running one needed room
 * (see evict_for): stopped now, and its memory collected. */
static void on_evict(struct sched *s, void *ud)
{
    (void)s;
    struct luavm *vm = ud;
    struct luavm_task *t = vm->evicting;
    vm->evict_timer = NULL;
    vm->evicting = NULL;
    unsigned realm = vm->evicting_realm;
    vm->evicting_realm = 0;
    if (realm && vm->owners[realm].gen == vm->evicting_realm_gen && vm->owners[realm].script) {
        /* A script whose module state held the most: unloaded here (as on a
         * reload: its next call loads it afresh), with its waiting tasks,
         * which hold that state too. */
        char script[512];
        snprintf(script, sizeof script, "%s", vm->owners[realm].script);
        log_msg(LOG_WARN, NULL,
                "%s unloaded on this worker: its module state held %zu MiB when the worker's "
                "scripts needed more than %zu MiB",
                script, realm_bytes(&vm->owners[realm]) >> 20, vm->opt.max_memory >> 20);
        char why[160];
        snprintf(why, sizeof why,
                 "its script held the most memory when the worker's scripts needed more than "
                 "%zu MiB",
                 vm->opt.max_memory >> 20);
        for (struct luavm_task *w = vm->tasks, *next; w; w = next) {
            next = w->next;
            if (w->realm == realm && w->realm_gen == vm->evicting_realm_gen)
                stop_waiting(w, LIMIT_MEMORY, why);
        }
        if (vm->unload)
            vm->unload(vm, script);
        vm_realm_drop(vm, realm, vm->evicting_realm_gen);
        lua_gc(vm->L, LUA_GCCOLLECT);
        return;
    }
    if (!t)
        return; /* it ended first */
    char why[160];
    snprintf(why, sizeof why,
             "held the most memory (%zu MiB) when the worker's scripts needed more than %zu MiB",
             vm->owners[t->owner].bytes >> 20, vm->opt.max_memory >> 20);
    stop_waiting(t, LIMIT_MEMORY, why);
    lua_gc(vm->L, LUA_GCCOLLECT);
}

void vm_wake(struct luavm_task *t, int nresults)
{
    struct luavm_result res;
    memset(&res, 0, sizeof res);
    if (!t->waiting || lua_status(t->co) != LUA_YIELD) {
        /* Cannot happen while scripts cannot touch a handler's coroutine
         * (see sb_coroutine_guard in sandbox.c); if it does, stop the task rather than
         * resume something else. */
        task_result(t, LUA_ERRRUN, 0, LIMIT_NONE, "the handler's coroutine was disturbed", &res);
        complete(t, &res);
        return;
    }
    if (vm_task_run(t, nresults, &res))
        complete(t, &res);
}

struct wake_args {
    int (*push)(lua_State *L, void *ud);
    void *ud;
    int n;
};

static int wake_protected(lua_State *L)
{
    struct wake_args *a = lua_touserdata(L, 1);
    lua_settop(L, 0);
    a->n = a->push(L, a->ud);
    return a->n;
}

void vm_wake_with(struct luavm_task *t, int (*push)(lua_State *L, void *ud), void *ud)
{
    lua_State *L = t->vm->L;
    int top = lua_gettop(L);
    struct wake_args a = {push, ud, 0};
    int n;
    lua_pushcfunction(L, wake_protected);
    lua_pushlightuserdata(L, &a);
    /* The answer (a response's body, say) is the task's memory. */
    t->vm->charging = t;
    int rc = lua_pcall(L, 1, LUA_MULTRET, 0);
    t->vm->charging = NULL;
    if (rc == LUA_OK) {
        n = lua_gettop(L) - top;
    } else {
        lua_settop(L, top);
        lua_pushnil(L);
        lua_pushliteral(L, "out of memory");
        n = 2;
    }
    if (!lua_checkstack(t->co, n + 1)) {
        lua_settop(L, top);
        n = 0;
    }
    lua_xmove(L, t->co, n);
    lua_settop(L, top);
    vm_wake(t, n);
}

/* ---- for bindings ------------------------------------------------------ */

struct luavm_task *vm_task_here(lua_State *L, const char *what)
{
    struct luavm *vm = vm_of_state(L);
    struct luavm_task *t = vm->current;
    if (!t || t->co != L)
        luaL_error(L,
                   "%s can only wait in a handler's own code (not at a script's top level or in "
                   "a coroutine the script made)",
                   what);
    if (!vm->opt.sched)
        luaL_error(L, "%s is not available here (no event loop)", what);
    if (!lua_isyieldable(L))
        luaL_error(L,
                   "%s cannot wait here: it was called through a C function that cannot pause "
                   "(a string.gsub or table.sort callback, a metamethod, ...)",
                   what);
    return t;
}

struct luavm *vm_of(const struct luavm_task *t)
{
    return t->vm;
}

const struct luavm_options *vm_options(const struct luavm *vm)
{
    return &vm->opt;
}

const char *vm_task_id(const struct luavm_task *t)
{
    return t->id;
}

long long vm_task_received(const struct luavm_task *t)
{
    return t->received_ms;
}

long long vm_task_time_left(const struct luavm_task *t)
{
    if (t->vm->opt.max_run_ms <= 0)
        return LLONG_MAX / 2;
    return t->received_ms + t->vm->opt.max_run_ms - sched_clock_ms();
}

const char *vm_task_api_base(const struct luavm_task *t)
{
    return t->api_base;
}

const char *vm_task_response_url(const struct luavm_task *t)
{
    return t->response_url;
}

int *vm_task_responded(struct luavm_task *t)
{
    return &t->responded;
}

int vm_wait(lua_State *L, struct luavm_task *t, void (*cancel)(void *), void *ud)
{
    t->waiting = 1;
    t->cancel = cancel;
    t->cancel_ud = ud;
    return lua_yield(L, 0);
}

lua_State *vm_task_thread(struct luavm_task *t)
{
    return t->co;
}

/* ---- making and freeing ------------------------------------------------ */

struct luavm *vm_new(const struct luavm_options *o, char *err, size_t errlen)
{
    struct luavm *vm = xcalloc(1, sizeof *vm);
    vm->opt = *o;
    size_t n = strlen(o->scripts_dir);
    while (n > 1 && o->scripts_dir[n - 1] == '/')
        n--;
    vm->scripts_dir = xstrndup(o->scripts_dir, n);
    vm->owners = xcalloc(16, sizeof *vm->owners);
    vm->nowners = 1;
    vm->L = lua_newstate(vm_alloc, vm);
    if (!vm->L) {
        snprintf(err, errlen, "cannot create a Lua state");
        vm_free(vm);
        return NULL;
    }
    /* Every thread starts with a copy of the main thread's extra space and
     * hook, so bindings and the limit hook find the vm from any coroutine. */
    *(struct luavm **)lua_getextraspace(vm->L) = vm;
    rest_hook(vm, vm->L);
    return vm;
}

void vm_free(struct luavm *vm)
{
    if (!vm)
        return;
    /* Tasks still waiting are dropped without their callbacks. */
    while (vm->tasks) {
        struct luavm_task *t = vm->tasks;
        unlink_task(t);
        if (t->waiting && t->cancel)
            t->cancel(t->cancel_ud);
        vm_task_free(t);
    }
    if (vm->evict_timer && vm->opt.sched)
        sched_timer_cancel(vm->opt.sched, vm->evict_timer);
    if (vm->L)
        lua_close(vm->L);
    small_free_all(vm);
    for (unsigned i = 0; vm->owners && i < vm->nowners; i++)
        free(vm->owners[i].script);
    free(vm->owners);
    scriptset_release(vm->set);
    free(vm->scripts_dir);
    free(vm);
}

void vm_task_park(struct luavm_task *t)
{
    struct luavm *vm = t->vm;
    vm->ntasks++;
    t->next = vm->tasks;
    if (vm->tasks)
        vm->tasks->prev = t;
    vm->tasks = t;
    if (vm->opt.max_run_ms > 0 && vm->opt.sched) {
        long long left = t->received_ms + vm->opt.max_run_ms - sched_clock_ms();
        t->run_timer = sched_timer_add(vm->opt.sched, left > 0 ? left : 0, on_run_timer, t);
    }
}

void vm_task_abandon(struct luavm_task *t, const char *why, struct luavm_result *res)
{
    unlink_task(t);
    t->vm->ntasks--;
    if (t->cancel)
        t->cancel(t->cancel_ud);
    t->waiting = 0;
    task_result(t, LUA_ERRRUN, 0, LIMIT_NONE, why, res);
    res->response_url = NULL; /* it lived in the task */
    vm_task_free(t);
}

/* ---- the watchdog ---------------------------------------------------------
 *
 * A thread watches every worker's slice: when one passes its CPU limit (or
 * the host's shutdown deadline), it sends the worker SIGURG, whose handler
 * sets the limit hook to run at the next instruction of the code running
 * there (lua_sethook is safe in a signal handler; Lua's own interpreter
 * stops scripts with it on SIGINT). That is the only way the hook is armed
 * for the clock on a worker, so a slice within its limit runs no hook at
 * all, and a single instruction that runs long in C (== on two long
 * strings reads them whole) is stopped right after it too. It costs a
 * slice no system call (a timer armed and disarmed per slice would cost
 * two): the worker only stores when its slice started and ended. The hook
 * reads the clock itself, so a signal meant for a slice that has just
 * ended stops nothing in the next one. Code that runs on another thread
 * than the one the vm knows must say so (vm_resume, vm_close), or the
 * signal would arm a thread that does not run. */

#define WATCH_EVERY_MS 10

static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct luavm *watched; /* vm->watch_next links them */
static pthread_t watch_thread;
static atomic_int watching; /* the thread runs */
static _Thread_local struct luavm *this_vm;

static void on_sigurg(int sig)
{
    (void)sig;
    struct luavm *vm = this_vm;
    if (vm && vm->slice_start)
        lua_sethook(running_thread(vm), limit_hook, LUA_MASKCOUNT, 1);
}

static void *watch_main(void *arg)
{
    (void)arg;
    while (atomic_load(&watching)) {
        struct timespec ts = {0, WATCH_EVERY_MS * 1000000L};
        nanosleep(&ts, NULL);
        long long now = sched_clock_ms();
        pthread_mutex_lock(&watch_mu);
        for (struct luavm *vm = watched; vm; vm = vm->watch_next) {
            long long d = atomic_load_explicit(&vm->wd_deadline, memory_order_relaxed);
            long long stop = atomic_load_explicit(&vm->stop_at, memory_order_relaxed);
            /* Past the limit as the hook reads it (strictly later), and
             * again every round while the slice goes on (a signal that
             * came as the running thread changed armed another one). */
            if (!d || (now <= d && !(stop && now >= stop)))
                continue;
            pthread_kill(vm->watch_tid, SIGURG);
        }
        pthread_mutex_unlock(&watch_mu);
    }
    return NULL;
}

void vm_watch(struct luavm *vm)
{
    this_vm = vm;
    vm->watch_tid = pthread_self();
    sigset_t urg;
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    pthread_mutex_lock(&watch_mu);
    if (!watched && !atomic_load(&watching)) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigurg;
        sa.sa_flags = SA_RESTART;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGURG, &sa, NULL);
        /* The watcher takes no signal itself. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        atomic_store(&watching, 1);
        if (pthread_create(&watch_thread, NULL, watch_main, NULL) != 0)
            atomic_store(&watching, 0); /* no watchdog: the hook alone bounds */
        pthread_sigmask(SIG_SETMASK, &old, NULL);
    }
    vm->watch_next = watched;
    watched = vm;
    /* With no watchdog thread, the hook alone bounds, as a count hook. */
    vm->watched = atomic_load(&watching);
    pthread_mutex_unlock(&watch_mu);
    rest_hook(vm, vm->L);
    pthread_sigmask(SIG_UNBLOCK, &urg, NULL);
}

void vm_unwatch(struct luavm *vm)
{
    sigset_t urg;
    sigemptyset(&urg);
    sigaddset(&urg, SIGURG);
    pthread_sigmask(SIG_BLOCK, &urg, NULL);
    int last = 0;
    pthread_mutex_lock(&watch_mu);
    for (struct luavm **p = &watched; *p; p = &(*p)->watch_next) {
        if (*p == vm) {
            *p = vm->watch_next;
            break;
        }
    }
    if (!watched && atomic_load(&watching)) {
        atomic_store(&watching, 0);
        last = 1;
    }
    pthread_mutex_unlock(&watch_mu);
    if (last)
        pthread_join(watch_thread, NULL);
    this_vm = NULL;
    vm->watched = 0;
    rest_hook(vm, vm->L);
}
