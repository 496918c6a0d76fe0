/* log: one line per event, escaped, buffered per worker (see log.h). */
#include "core/log.h"

#include "core/buf.h"
#include "core/jsonw.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set again on SIGHUP while workers log: an atomic. */
static _Atomic int min_level = LOG_INFO;
static _Atomic int json_format; /* lines as JSON objects */
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* Room for a line: past the cut, room for the longest secret, so that
 * secrets are masked before the line is cut (a cut must not leave part of
 * one), and for the cut's mark and the newline. */
#define LINE_ROOM (LOG_LINE_MAX + SECRET_MAX_ENCODED)

struct log_thread {
    int buffered;
    char pending[LOG_CHUNK];
    size_t pending_len;
    time_t stamp_sec; /* the second `stamp` was formatted for */
    char stamp[32];   /* "2026-11-22T14:23:01" */
    size_t stamp_len;
    /* The line log_begin hands out, built in place until log_end. */
    char line[LINE_ROOM + 8];
    struct buf open; /* over `line`; data is NULL when no line is open */
    enum log_level open_level;
    const char *open_req; /* borrowed until log_end */
    struct timespec open_ts;
    size_t open_start; /* where the message starts */
};

static _Thread_local struct log_thread tls;

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
}

void log_set_json(int on)
{
    atomic_store_explicit(&json_format, on, memory_order_relaxed);
}

enum log_level log_get_level(void)
{
    return (enum log_level)atomic_load_explicit(&min_level, memory_order_relaxed);
}

void log_set_fd(int fd)
{
    log_fd = fd;
}

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(log_fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* Nowhere left to report it. */
        }
        p += w;
        n -= (size_t)w;
    }
}

void log_flush(void)
{
    if (tls.pending_len) {
        write_all(tls.pending, tls.pending_len);
        tls.pending_len = 0;
    }
}

void log_thread_buffered(int on)
{
    if (!on)
        log_flush();
    tls.buffered = on;
}

static void emit(const char *line, size_t n)
{
    if (!tls.buffered) {
        write_all(line, n);
        return;
    }
    if (tls.pending_len + n > sizeof tls.pending)
        log_flush();
    memcpy(tls.pending + tls.pending_len, line, n);
    tls.pending_len += n;
}

int log_escape(struct buf *b, const char *v, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0; /* start of the current run of plain bytes */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        const char *esc = NULL;
        char tmp[4];
        if (c == '\n')
            esc = "\\n";
        else if (c == '\t')
            esc = "\\t";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c < 0x20 || c == 0x7f) {
            tmp[0] = '\\';
            tmp[1] = 'x';
            tmp[2] = hex[c >> 4];
            tmp[3] = hex[c & 15];
            if (buf_add(b, v + run, i - run) < 0 || buf_add(b, tmp, 4) < 0)
                return -1;
            run = i + 1;
            continue;
        }
        if (esc) {
            if (buf_add(b, v + run, i - run) < 0 || buf_adds(b, esc) < 0)
                return -1;
            run = i + 1;
        }
    }
    return buf_add(b, v + run, n - run);
}

int log_kv(struct buf *b, const char *key, const char *v, size_t n)
{
    int plain = n > 0;
    for (size_t i = 0; i < n && plain; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= 0x7f)
            plain = 0;
    }
    size_t kl = strlen(key);
    if (plain) {
        /* The usual case, in one reserve and three copies: " key=value". */
        if (buf_reserve(b, kl + n + 2) < 0)
            return -1;
        char *p = b->data + b->len;
        *p++ = ' ';
        memcpy(p, key, kl);
        p[kl] = '=';
        memcpy(p + kl + 1, v, n);
        b->len += kl + n + 2;
        b->data[b->len] = '\0';
        return 0;
    }
    if (buf_addc(b, ' ') < 0 || buf_add(b, key, kl) < 0 || buf_addc(b, '=') < 0)
        return -1;
    if (buf_addc(b, '"') < 0 || log_escape(b, v, n) < 0)
        return -1;
    return buf_addc(b, '"');
}

/* The secrets log_redact masks: grow-only, so a reader needs no lock (it
 * reads `nsecrets` and then only entries already written). */
#define SECRETS_MAX 512
#define SECRET_MIN  8
#define SECRET_MAX  1024 /* longer ones are taken as their first 1024 bytes' prefix */
static char *secrets[SECRETS_MAX];
static size_t secret_lens[SECRETS_MAX];
static atomic_size_t nsecrets;
static pthread_mutex_t secrets_mu = PTHREAD_MUTEX_INITIALIZER;

static void add_secret_locked(const char *s, size_t n)
{
    size_t have = atomic_load_explicit(&nsecrets, memory_order_relaxed);
    for (size_t i = 0; i < have; i++)
        if (secret_lens[i] == n && memcmp(secrets[i], s, n) == 0)
            return;
    if (have == SECRETS_MAX) {
        static int said;
        if (!said++)
            fprintf(stderr, "cliqhost: more than %d secrets to mask; later ones are not masked\n",
                    SECRETS_MAX);
        return;
    }
    secrets[have] = strndup(s, n);
    if (!secrets[have])
        return;
    secret_lens[have] = n;
    atomic_store_explicit(&nsecrets, have + 1, memory_order_release);
}

void log_add_secret(const char *s)
{
    size_t n = strlen(s);
    if (n < SECRET_MIN)
        return;
    if (n > SECRET_MAX)
        n = SECRET_MAX; /* a prefix that long is as good: masking it hides the rest's start */
    /* As it is, and as it reads in a URL's query (RFC 3986 unreserved kept). */
    char enc[SECRET_MAX_ENCODED + 1];
    size_t e = 0;
    static const char hex[] = "0123456789ABCDEF";
    for (size_t i = 0; i < n && e + 3 < sizeof enc; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            enc[e++] = (char)c;
        } else {
            enc[e++] = '%';
            enc[e++] = hex[c >> 4];
            enc[e++] = hex[c & 15];
        }
    }
    pthread_mutex_lock(&secrets_mu);
    add_secret_locked(s, n);
    add_secret_locked(enc, e);
    pthread_mutex_unlock(&secrets_mu);
}

void log_redact(char *line, size_t len)
{
    size_t ns = atomic_load_explicit(&nsecrets, memory_order_acquire);
    for (size_t i = 0; i < ns; i++) {
        char *p = line;
        while ((p = memmem(p, len - (size_t)(p - line), secrets[i], secret_lens[i]))) {
            memset(p, '*', secret_lens[i]);
            p += secret_lens[i];
        }
    }
    /* The values of zapikey= and appkey=, in one pass over the '='s: each
     * value is masked up to the first byte that ends it. (A key inside a
     * value already masked ends where that value does.) */
    char *end = line + len;
    for (char *p = line; (p = memchr(p, '=', (size_t)(end - p)));) {
        size_t before = (size_t)(p - line);
        p++;
        if (!((before >= 7 && memcmp(p - 8, "zapikey", 7) == 0) ||
              (before >= 6 && memcmp(p - 7, "appkey", 6) == 0)))
            continue;
        while (p < end && *p != '&' && *p != ' ' && *p != '"' && *p != '\'' && *p != '\n' &&
               *p != '\\')
            *p++ = '*';
    }
}

static int key_char(char c, int first)
{
    return (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

/* A value written by log_kv: bare, or quoted with log_escape's escapes
 * (\" \\ \n \t \r \xNN). Appends it unescaped to `v`; returns the text
 * after it. */
static const char *take_value(const char *p, const char *end, struct buf *v)
{
    if (p >= end || *p != '"') {
        const char *q = p;
        while (q < end && *q != ' ')
            q++;
        buf_add(v, p, (size_t)(q - p));
        return q;
    }
    for (p++; p < end && *p != '"'; p++) {
        if (*p == '\\' && p + 1 < end) {
            p++;
            char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p == 'r' ? '\r' : *p;
            if (*p == 'x' && p + 2 < end) {
                unsigned x = 0;
                sscanf(p + 1, "%2x", &x);
                c = (char)x;
                p += 2;
            }
            buf_addc(v, c);
        } else {
            buf_addc(v, *p);
        }
    }
    return p < end ? p + 1 : p;
}

/* Whether s is a number JSON can carry as it is: -?digits[.digits], no
 * leading zero. */
static int numeric(const char *s, size_t n)
{
    size_t i = s[0] == '-';
    size_t first = i;
    int dot = 0;
    for (; i < n; i++) {
        if (s[i] == '.' && !dot && i > first && i + 1 < n)
            dot = 1;
        else if (s[i] < '0' || s[i] > '9')
            return 0;
    }
    if (first >= n)
        return 0;
    return !(s[first] == '0' && first + 1 < n && s[first + 1] != '.');
}

/* One JSON object for a line: time, level, request_id, the message's words
 * as "msg", and each key=value in it as a field. */
static size_t json_line(const char *stamp, long ms, enum log_level level, const char *req_id,
                        const char *msg, size_t len, char *out, size_t cap)
{
    struct buf b, words, v;
    buf_init(&b, cap - 2);
    buf_init(&words, LOG_LINE_MAX);
    buf_init(&v, LOG_LINE_MAX);
    buf_printf(&b, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\"", stamp, ms, level_names[level]);
    if (req_id) {
        buf_adds(&b, ",\"request_id\":");
        jsonw_string(&b, req_id, strlen(req_id), JSONW_REPLACE, NULL);
    }
    struct buf fields, named;
    buf_init(&fields, LOG_LINE_MAX * 2);
    buf_init(&named, LOG_LINE_MAX); /* the message a msg= field carries */
    int has_named = 0;
    /* Keys already written, so each appears once: the line's own, then
     * every field's (a repeated one gets _2, _3, ...). */
    char seen[32][44];
    int nseen = 0;
    const char *p = msg, *end = msg + len;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        const char *k = p;
        while (p < end && key_char(*p, p == k))
            p++;
        if (p > k && p < end && *p == '=' && (size_t)(p - k) < 40) {
            size_t kl = (size_t)(p - k);
            v.len = 0;
            p = take_value(p + 1, end, &v);
            if (kl == 3 && memcmp(k, "msg", 3) == 0 && !has_named) {
                /* A script's line: what it logged is the message. */
                has_named = 1;
                buf_add(&named, v.data ? v.data : "", v.len);
                continue;
            }
            char key[44];
            snprintf(key, sizeof key, "%.*s", (int)kl, k);
            static const char *const own[] = {"time", "level", "request_id", "msg"};
            int dup = 0;
            for (size_t i = 0; i < sizeof own / sizeof *own; i++)
                dup |= strcmp(key, own[i]) == 0;
            for (int i = 0; i < nseen; i++)
                dup |= strcmp(key, seen[i]) == 0;
            for (int n = 2; dup && n < 100; n++) {
                snprintf(key, sizeof key, "%.*s_%d", (int)kl, k, n);
                dup = 0;
                for (size_t i = 0; i < sizeof own / sizeof *own; i++)
                    dup |= strcmp(key, own[i]) == 0;
                for (int i = 0; i < nseen; i++)
                    dup |= strcmp(key, seen[i]) == 0;
            }
            if (nseen < 32)
                snprintf(seen[nseen++], sizeof seen[0], "%s", key);
            buf_addc(&fields, ',');
            buf_addc(&fields, '"');
            buf_adds(&fields, key);
            buf_adds(&fields, "\":");
            if (v.len && numeric(v.data, v.len))
                buf_add(&fields, v.data, v.len);
            else
                jsonw_string(&fields, v.data ? v.data : "", v.len, JSONW_REPLACE, NULL);
            continue;
        }
        while (p < end && *p != ' ')
            p++;
        if (words.len)
            buf_addc(&words, ' ');
        buf_add(&words, k, (size_t)(p - k));
    }
    /* The message: a msg= field's (with any other words before it), or the
     * words. */
    if (has_named && words.len)
        buf_addc(&words, ' ');
    if (has_named)
        buf_add(&words, named.data ? named.data : "", named.len);
    buf_adds(&b, ",\"msg\":");
    jsonw_string(&b, words.data ? words.data : "", words.len, JSONW_REPLACE, NULL);
    if (fields.len)
        buf_add(&b, fields.data, fields.len);
    buf_addc(&b, '}');
    size_t n = b.len < cap ? b.len : cap;
    memcpy(out, b.data, n);
    buf_free(&b);
    buf_free(&words);
    buf_free(&v);
    buf_free(&fields);
    buf_free(&named);
    return n;
}

/* Writes `<time> <level> [req=<id> ]` to line, which has room for it.
 * Returns its length. No printf: this runs for every line. */
static size_t put_prefix(char *line, enum log_level level, const char *req_id,
                         const struct timespec *ts)
{
    if (ts->tv_sec != tls.stamp_sec || !tls.stamp[0]) {
        struct tm tm;
        gmtime_r(&ts->tv_sec, &tm);
        tls.stamp_len = strftime(tls.stamp, sizeof tls.stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        tls.stamp_sec = ts->tv_sec;
    }
    size_t n = tls.stamp_len;
    memcpy(line, tls.stamp, n);
    long ms = ts->tv_nsec / 1000000L;
    line[n++] = '.';
    line[n++] = (char)('0' + ms / 100);
    line[n++] = (char)('0' + ms / 10 % 10);
    line[n++] = (char)('0' + ms % 10);
    line[n++] = 'Z';
    line[n++] = ' ';
    const char *name = level_names[level];
    size_t nl = strlen(name);
    memcpy(line + n, name, nl);
    n += nl;
    for (; nl < 5; nl++)
        line[n++] = ' '; /* "%-5s" */
    line[n++] = ' ';
    if (req_id) {
        /* Request ids are short (REQ_ID_MAX); a longer one is cut here. */
        size_t rl = strnlen(req_id, 128);
        memcpy(line + n, "req=", 4);
        memcpy(line + n + 4, req_id, rl);
        n += 4 + rl;
        line[n++] = ' ';
    }
    return n;
}

/* Finishes and writes a line of `full` bytes whose message starts at
 * `start`: masks secrets, cuts it to LOG_LINE_MAX, keeps it on one line,
 * turns it into JSON when asked. `line` has room for LINE_ROOM + 4
 * bytes. */
static void finish_line(char *line, size_t start, size_t full, enum log_level level,
                        const char *req_id, const struct timespec *ts)
{
    /* Webhook tokens and app keys never reach the log, whatever put them
     * in a message (a URL in a library's error text, say). */
    log_redact(line, full);
    size_t len = full;
    if (full >= LOG_LINE_MAX) {
        len = LOG_LINE_MAX - 1;
        memcpy(line + len, "\xe2\x80\xa6", 3); /* "…" marks a cut line */
        len += 3;
    }
    /* A message must never span lines: callers escape values, and this
     * catches any newline that slipped into a format string's arguments. */
    for (char *p = line; (p = memchr(p, '\n', len - (size_t)(p - line))); p++)
        *p = ' ';
    if (atomic_load_explicit(&json_format, memory_order_relaxed)) {
        char json[2 * LOG_LINE_MAX + 64];
        if (start > len)
            start = len;
        size_t jl = json_line(tls.stamp, ts->tv_nsec / 1000000L, level, req_id, line + start,
                              len - start, json, sizeof json - 1);
        json[jl++] = '\n';
        emit(json, jl);
        return;
    }
    line[len++] = '\n';
    emit(line, len);
}

void log_vmsg(enum log_level level, const char *req_id, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    char line[LINE_ROOM + 8];
    size_t n = put_prefix(line, level, req_id, &ts);
    int m = vsnprintf(line + n, LINE_ROOM - n, fmt, ap);
    size_t full = m < 0 ? n : (size_t)m >= LINE_ROOM - n ? LINE_ROOM - 1 : n + (size_t)m;
    finish_line(line, n, full, level, req_id, &ts);
}

struct buf *log_begin(enum log_level level, const char *req_id)
{
    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        return NULL;
    struct buf *b = &tls.open;
    clock_gettime(CLOCK_REALTIME, &tls.open_ts);
    size_t n = put_prefix(tls.line, level, req_id, &tls.open_ts);
    /* A buffer over the thread's line that never grows: appends past
     * LINE_ROOM - 1 bytes fail, as vsnprintf would cut them. */
    b->data = tls.line;
    b->alloc = sizeof tls.line;
    b->max = LINE_ROOM - 1;
    b->len = n - 1; /* the message's first ' ' (log_kv's) ends the prefix */
    b->data[b->len] = '\0';
    tls.open_level = level;
    tls.open_req = req_id;
    tls.open_start = n;
    return b;
}

void log_end(struct buf *b)
{
    if (!b || b != &tls.open || !b->data)
        return;
    if (b->len < tls.open_start) /* nothing was added: the prefix as it was */
        b->data[b->len++] = ' ';
    finish_line(b->data, tls.open_start, b->len, tls.open_level, tls.open_req, &tls.open_ts);
    b->data = NULL;
    tls.open_req = NULL;
}

void log_msg(enum log_level level, const char *req_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, req_id, fmt, ap);
    va_end(ap);
}
