/*
 * log: one line per event on standard error.
 *
 * A line is `<UTC time> <level> [req=<id>] <message>`. Values that callers
 * put into key=value pairs go through log_kv(), which quotes and escapes them,
 * so a value can never break a line in two or forge another line.
 *
 * Worker threads turn on buffering: their lines collect in a thread-local
 * buffer and go out in whole-line chunks of at most LOG_CHUNK bytes (one
 * write(2) each, atomic on pipes) when the worker's loop calls log_flush().
 * Other threads write each line at once.
 */
#ifndef CLIQHOST_LOG_H
#define CLIQHOST_LOG_H

#include <stdarg.h>
#include <stddef.h>

struct buf;

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* The longest line written; longer ones are cut and end in "…". */
#define LOG_LINE_MAX 4000
/* The longest secret log_add_secret masks, percent-encoded. */
#define SECRET_MAX_ENCODED (3 * 1024)
#define LOG_CHUNK          4096

/* Lines below `level` are dropped. Call before starting threads. */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Lines as JSON objects: {"time", "level", "request_id", "msg", and each
 * key=value of the message as a field}, one per line. */
void log_set_json(int on);
/* Parses "debug", "info", "warn" or "error". Returns 0 or -1. */
int log_parse_level(const char *s, enum log_level *out);
/* Writes to `fd` instead of standard error (tests). */
void log_set_fd(int fd);

/* Logs one line. `req_id` may be NULL. */
void log_msg(enum log_level level, const char *req_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vmsg(enum log_level level, const char *req_id, const char *fmt, va_list ap);

/* A line built in place, in one pass, for hot paths (the request line):
 *
 *     struct buf *b = log_begin(LOG_INFO, id);
 *     if (b) { log_kv(b, "status", ...); ...; log_end(b); }
 *
 * log_begin returns NULL when `level` is below the level logged; else the
 * calling thread's line buffer with the line's time, level and req= in it
 * (no allocation: the buffer is borrowed until log_end, which writes the
 * line as log_msg would: masked, cut, one line, JSON when asked). The
 * message must begin with a space, as log_kv() writes it; an append that
 * would pass the room for a line fails and the line is cut at
 * LOG_LINE_MAX. `req_id` is borrowed until log_end. A thread has one such
 * line: no log_begin again before log_end (log_msg is fine). */
struct buf *log_begin(enum log_level level, const char *req_id);
void log_end(struct buf *b);

/* Turns on line buffering for the calling thread (see above). */
void log_thread_buffered(int on);
/* Writes out what the calling thread has buffered. */
void log_flush(void);

/* Appends ` key=value` to b, quoting the value with escapes when it holds
 * anything but plain printable ASCII without spaces, quotes or '='. `n` is
 * the value's length. Returns 0 or -1 when b is full. */
int log_kv(struct buf *b, const char *key, const char *value, size_t n);
/* Masks in place with '*', in s (len bytes): the values of zapikey= and
 * appkey=, and every secret given to log_add_secret, as it is and
 * percent-encoded. Every log line goes through it, and so does every text
 * the host hands back from elsewhere (an endpoint's error, say). */
void log_redact(char *s, size_t len);

/* Adds a secret (a webhook token) that log_redact masks wherever it
 * appears, for the life of the process: a token dropped from the config
 * stays a secret. Copies s. Secrets shorter than 8 bytes are not taken
 * (they would mask ordinary words); at most 256 are kept. Thread-safe. */
void log_add_secret(const char *s);

/* Appends `value` escaped (\n, \t, \", \\, \xNN) without quotes. */
int log_escape(struct buf *b, const char *value, size_t n);

#endif
