/* log: one line per event, escaped, buffered per worker (see log.h). */
#include "log.h"

#include "buf.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set again on SIGHUP while workers log: an atomic. */
static _Atomic int min_level = LOG_INFO;
static int log_fd = 2;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

struct log_thread {
    int buffered;
    char pending[LOG_CHUNK];
    size_t pending_len;
    time_t stamp_sec; /* the second `stamp` was formatted for */
    char stamp[32];   /* "2026-11-22T14:23:01" */
};

static _Thread_local struct log_thread tls;

void log_set_level(enum log_level level)
{
    atomic_store_explicit(&min_level, (int)level, memory_order_relaxed);
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
    if (buf_addc(b, ' ') < 0 || buf_adds(b, key) < 0 || buf_addc(b, '=') < 0)
        return -1;
    if (plain)
        return buf_add(b, v, n);
    if (buf_addc(b, '"') < 0 || log_escape(b, v, n) < 0)
        return -1;
    return buf_addc(b, '"');
}

void log_redact(char *line, size_t len)
{
    static const char *const keys[] = {"zapikey=", "appkey="};
    for (size_t k = 0; k < 2; k++) {
        size_t kl = strlen(keys[k]);
        char *p = line;
        while ((p = memmem(p, len - (size_t)(p - line), keys[k], kl))) {
            p += kl;
            while (p < line + len && *p != '&' && *p != ' ' && *p != '"' && *p != '\'' &&
                   *p != '\n' && *p != '\\')
                *p++ = '*';
        }
    }
}

void log_vmsg(enum log_level level, const char *req_id, const char *fmt, va_list ap)
{
    if ((int)level < atomic_load_explicit(&min_level, memory_order_relaxed))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != tls.stamp_sec || !tls.stamp[0]) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(tls.stamp, sizeof tls.stamp, "%Y-%m-%dT%H:%M:%S", &tm);
        tls.stamp_sec = ts.tv_sec;
    }
    char line[LOG_LINE_MAX + 8];
    int n = snprintf(line, LOG_LINE_MAX, "%s.%03ldZ %-5s ", tls.stamp, ts.tv_nsec / 1000000L,
                     level_names[level]);
    if (req_id)
        n += snprintf(line + n, (size_t)(LOG_LINE_MAX - n), "req=%s ", req_id);
    int m = vsnprintf(line + n, (size_t)(LOG_LINE_MAX - n), fmt, ap);
    size_t len;
    if (m < 0) {
        len = (size_t)n;
    } else if (m >= LOG_LINE_MAX - n) {
        len = LOG_LINE_MAX - 1;
        memcpy(line + len, "\xe2\x80\xa6", 3); /* "…" marks a cut line */
        len += 3;
    } else {
        len = (size_t)(n + m);
    }
    /* Webhook tokens and app keys never reach the log, whatever put them
     * in a message (a URL in a library's error text, say). */
    log_redact(line, len);
    /* A message must never span lines: callers escape values, and this
     * catches any newline that slipped into a format string's arguments. */
    for (size_t i = 0; i < len; i++)
        if (line[i] == '\n')
            line[i] = ' ';
    line[len++] = '\n';
    emit(line, len);
}

void log_msg(enum log_level level, const char *req_id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(level, req_id, fmt, ap);
    va_end(ap);
}
