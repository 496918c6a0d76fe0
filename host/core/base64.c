/* base64: RFC 4648 standard alphabet (see base64.h). */
#include "core/base64.h"

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for '=', 65 for whitespace, 66 for
 * anything else. Written out, so nothing is built at run time. */
static const unsigned char decode_table[256] = {
    66, 66, 66, 66, 66, 66, 66, 66, 66, 65, 65, 66, 66, 65, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 65, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 62, 66, 66, 66, 63,
    52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 66, 66, 66, 64, 66, 66, 66, 0,  1,  2,  3,  4,  5,  6,
    7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 66, 66, 66, 66, 66,
    66, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, 48,
    49, 50, 51, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
    66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66, 66,
};

int base64_decode(const char *in, size_t n, unsigned char *out, size_t outcap, size_t *outlen,
                  int flags)
{
    unsigned int acc = 0;
    int bits = 0; /* characters in the current quantum, 0..3 */
    size_t o = 0;
    size_t pad = 0;   /* '=' seen */
    size_t chars = 0; /* alphabet characters seen */
    for (size_t i = 0; i < n; i++) {
        /* Four alphabet characters at a quantum's start: three bytes at
         * once (a signature is nothing else until its padding). */
        while (bits == 0 && !pad && n - i >= 4 && o + 3 <= outcap) {
            const unsigned char *q = (const unsigned char *)in + i;
            unsigned a = decode_table[q[0]], b = decode_table[q[1]];
            unsigned c = decode_table[q[2]], d = decode_table[q[3]];
            if ((a | b | c | d) >= 64)
                break;
            unsigned v = a << 18 | b << 12 | c << 6 | d;
            out[o++] = (unsigned char)(v >> 16);
            out[o++] = (unsigned char)(v >> 8);
            out[o++] = (unsigned char)v;
            chars += 4;
            i += 4;
        }
        if (i >= n)
            break;
        unsigned char v = decode_table[(unsigned char)in[i]];
        if (v == 65) {
            if (!(flags & BASE64_SKIP_SPACE))
                return -1;
            continue;
        }
        if (v == 66)
            return -1;
        if (v == 64) {
            pad++;
            continue;
        }
        if (pad)
            return -1; /* data after padding */
        chars++;
        acc = (acc << 6) | v;
        if (++bits == 4) {
            if (o + 3 > outcap)
                return -1;
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
            bits = 0;
        }
    }
    if (bits == 1)
        return -1; /* six bits cannot make a byte */
    if (pad && (pad > 2 || (chars + pad) % 4 != 0))
        return -1;
    if ((flags & BASE64_STRICT) &&
        ((chars + pad) % 4 != 0 || (bits == 2 && (acc & 0xf)) || (bits == 3 && (acc & 0x3))))
        return -1;
    if (bits == 2) {
        if (o + 1 > outcap)
            return -1;
        out[o++] = (unsigned char)(acc >> 4);
    } else if (bits == 3) {
        if (o + 2 > outcap)
            return -1;
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *outlen = o;
    return 0;
}

size_t base64_encode(const unsigned char *in, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        unsigned int v = (unsigned int)in[i] << 16 | (unsigned int)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < n) {
        unsigned int v = (unsigned int)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned int)in[i + 1] << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = i + 1 < n ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}
