/*
 * base64: the standard alphabet of RFC 4648 §4, both ways.
 *
 * Keys pasted from Cliq's extension page may carry line breaks or spaces, so
 * decoding can skip whitespace; signatures are decoded strictly, in their one
 * canonical spelling.
 */
#ifndef CLIQHOST_BASE64_H
#define CLIQHOST_BASE64_H

#include <stddef.h>

#define BASE64_SKIP_SPACE 1 /* ignore spaces, tabs, CR and LF anywhere */
#define BASE64_STRICT     2 /* canonical only: padded, unused bits zero */

/* The most bytes decoding `n` characters can give. */
#define BASE64_DECODED_MAX(n) (((n) / 4 + 1) * 3)
/* The characters encoding `n` bytes gives, without the NUL. */
#define BASE64_ENCODED_LEN(n) ((((n) + 2) / 3) * 4)

/* Decodes `in` into `out` (room for `outcap` bytes) and sets *outlen.
 * Padding is optional, but where present it must be correct and last;
 * with BASE64_STRICT it is required, and the last character's unused bits
 * must be zero, so each byte string has exactly one accepted spelling.
 * Returns 0, or -1 for a character outside the alphabet, misplaced
 * padding, a dangling character, or output that would not fit. */
int base64_decode(const char *in, size_t n, unsigned char *out, size_t outcap, size_t *outlen,
                  int flags);

/* Encodes n bytes into `out`, which must hold BASE64_ENCODED_LEN(n) + 1
 * bytes, padded and NUL-terminated. Returns the length. Can't fail. */
size_t base64_encode(const unsigned char *in, size_t n, char *out);

#endif
