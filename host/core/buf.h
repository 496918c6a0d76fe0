/*
 * buf: a growable byte buffer with a hard maximum.
 *
 * Modelled on curl's dynbuf: every buffer is created with the most it may ever
 * hold, and an append that would pass it fails cleanly (the buffer keeps what
 * it had) instead of growing without bound. The contents are always followed
 * by a NUL byte that is not counted in `len`, so text can be used as a C
 * string.
 */
#ifndef CLIQHOST_BUF_H
#define CLIQHOST_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data;   /* NULL until the first append; owned by the buffer */
    size_t len;   /* bytes used, not counting the trailing NUL */
    size_t alloc; /* bytes allocated */
    size_t max;   /* the most `len` may ever be */
};

/* Sets up an empty buffer that will refuse to hold more than `max` bytes.
 * Allocates nothing. This function can't fail. */
void buf_init(struct buf *b, size_t max);
/* Frees the contents; the buffer is empty and reusable afterwards. */
void buf_free(struct buf *b);
/* Empties the buffer but keeps its allocation for reuse. */
void buf_reset(struct buf *b);

/* Makes room for `extra` more bytes without appending. Returns 0, or -1 if
 * that would pass the maximum. */
int buf_reserve(struct buf *b, size_t extra);

/* Appends n bytes. Returns 0, or -1 if the result would pass the maximum
 * (nothing is appended then). */
int buf_add(struct buf *b, const void *data, size_t n);
int buf_addc(struct buf *b, char c);
int buf_adds(struct buf *b, const char *s);
/* Appends v in decimal, at least `digits` digits (zero-padded). Returns 0 or
 * -1 like buf_add. For hot paths: no printf. */
int buf_addu(struct buf *b, unsigned long long v, int digits);
/* printf-style append; -1 if the formatted text would pass the maximum. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int buf_vprintf(struct buf *b, const char *fmt, va_list ap);

/* Hands the contents to the caller (who frees them) and leaves the buffer
 * empty. Returns an allocated empty string if nothing was appended. */
char *buf_take(struct buf *b, size_t *len);

/* Reads a whole file, or standard input for "-", of at most `max` bytes.
 * Returns the text, NUL-terminated (caller frees), with its length in *len;
 * NULL with "PATH: reason" in err. */
char *buf_read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen);

#endif
