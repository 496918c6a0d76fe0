/* Unit tests for base64: RFC 4648 vectors and the edge cases keys and
 * signatures meet. */
#include "check.h"
#include "core/base64.h"

static const char *decode(const char *in, int flags, size_t *n)
{
    static unsigned char out[256];
    if (base64_decode(in, strlen(in), out, sizeof out - 1, n, flags) < 0)
        return NULL;
    out[*n] = '\0';
    return (const char *)out;
}

/* BASE64_STRICT (signatures): one spelling per byte string: padded to a
 * whole quantum, and the last character's unused bits zero. */
static void test_strict_is_canonical(void)
{
    size_t n;
    CHECK_STR(decode("Zg==", BASE64_STRICT, &n), "f");
    CHECK_STR(decode("Zm8=", BASE64_STRICT, &n), "fo");
    CHECK_STR(decode("Zm9v", BASE64_STRICT, &n), "foo");
    CHECK(decode("Zg", BASE64_STRICT, &n) == NULL); /* padding left out */
    CHECK(decode("Zm8", BASE64_STRICT, &n) == NULL);
    CHECK(decode("Zh==", BASE64_STRICT, &n) == NULL); /* "f" with unused bits set */
    CHECK(decode("Zm9=", BASE64_STRICT, &n) == NULL); /* "fo" with unused bits set */
    CHECK(decode("Zm8=\v", BASE64_STRICT, &n) == NULL);
    CHECK(decode(" Zm8=", BASE64_STRICT, &n) == NULL);
    /* Without the flag the lax forms still decode (keys pasted by hand). */
    CHECK_STR(decode("Zh==", 0, &n), "f");
}

static void test_rfc4648_vectors(void)
{
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"",         "Zg==",     "Zm8=",    "Zm9v",
                                        "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        char enc[64];
        size_t n = base64_encode((const unsigned char *)plain[i], strlen(plain[i]), enc);
        CHECK_STR(enc, coded[i]);
        CHECK_INT(n, strlen(coded[i]));
        size_t dn;
        CHECK_STR(decode(coded[i], 0, &dn), plain[i]);
        CHECK_INT(dn, strlen(plain[i]));
    }
}

static void test_padding_is_optional_but_checked(void)
{
    size_t n;
    CHECK_STR(decode("Zg", 0, &n), "f");
    CHECK_STR(decode("Zm8", 0, &n), "fo");
    CHECK(decode("Zg=", 0, &n) == NULL);      /* short padding */
    CHECK(decode("Zg===", 0, &n) == NULL);    /* too much padding */
    CHECK(decode("Zg==Zg==", 0, &n) == NULL); /* data after padding */
    CHECK(decode("Z", 0, &n) == NULL);        /* a lone character is 6 bits */
    CHECK(decode("Zm9v=", 0, &n) == NULL);
}

static void test_whitespace(void)
{
    size_t n;
    CHECK(decode("Zm9v\nYmFy", 0, &n) == NULL);
    CHECK_STR(decode(" Zm9v\r\n YmFy\t", BASE64_SKIP_SPACE, &n), "foobar");
}

static void test_alphabet(void)
{
    size_t n;
    CHECK(decode("Zm9v!mFy", 0, &n) == NULL);
    CHECK(decode("Zm9v-_==", 0, &n) == NULL); /* URL-safe alphabet is not accepted */
    unsigned char all[256];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)i;
    char enc[400];
    base64_encode(all, 256, enc);
    unsigned char back[256];
    size_t bn;
    CHECK_INT(base64_decode(enc, strlen(enc), back, sizeof back, &bn, 0), 0);
    CHECK_INT(bn, 256);
    CHECK(memcmp(all, back, 256) == 0);
}

static void test_output_capacity(void)
{
    unsigned char out[3];
    size_t n;
    CHECK_INT(base64_decode("Zm9v", 4, out, 3, &n, 0), 0);
    CHECK_INT(base64_decode("Zm9vYg==", 8, out, 3, &n, 0), -1);
    CHECK_INT(base64_decode("Zm9vYmFy", 8, out, 3, &n, 0), -1);
}

/* The decoder one character at a time, as RFC 4648 reads: the reference
 * for the one that takes four at once. */
static int reference_decode(const char *in, size_t n, unsigned char *out, size_t cap,
                            size_t *outlen, int flags)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned acc = 0;
    int bits = 0;
    size_t o = 0, pad = 0, chars = 0;
    for (size_t i = 0; i < n; i++) {
        char c = in[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            if (!(flags & BASE64_SKIP_SPACE))
                return -1;
            continue;
        }
        if (c == '=') {
            pad++;
            continue;
        }
        const char *p = c ? strchr(alpha, c) : NULL;
        if (!p || pad)
            return -1;
        chars++;
        acc = (acc << 6) | (unsigned)(p - alpha);
        if (++bits == 4) {
            if (o + 3 > cap)
                return -1;
            out[o++] = (unsigned char)(acc >> 16);
            out[o++] = (unsigned char)(acc >> 8);
            out[o++] = (unsigned char)acc;
            acc = 0;
            bits = 0;
        }
    }
    if (bits == 1 || (pad && (pad > 2 || (chars + pad) % 4 != 0)))
        return -1;
    if ((flags & BASE64_STRICT) &&
        ((chars + pad) % 4 != 0 || (bits == 2 && (acc & 0xf)) || (bits == 3 && (acc & 0x3))))
        return -1;
    if (bits == 2) {
        if (o + 1 > cap)
            return -1;
        out[o++] = (unsigned char)(acc >> 4);
    } else if (bits == 3) {
        if (o + 2 > cap)
            return -1;
        out[o++] = (unsigned char)(acc >> 10);
        out[o++] = (unsigned char)(acc >> 2);
    }
    *outlen = o;
    return 0;
}

/* Random texts, mostly valid base64 with a few other characters (space,
 * '=', a byte outside the alphabet) dropped in, and small and large
 * outputs: the decoder answers as the reference does, byte for byte. */
static void test_agrees_with_reference(void)
{
    static const char pool[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    unsigned long long seed = 0x9E3779B97F4A7C15ull;
    int differ = 0;
    for (int round = 0; round < 200000 && differ < 5; round++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t n = (size_t)(seed >> 33) % 40;
        char in[48];
        for (size_t i = 0; i < n; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            unsigned r = (unsigned)(seed >> 33);
            in[i] = r % 23 == 0 ? "= \n*\x80"[r / 23 % 5] : pool[r % 64];
        }
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int flags = (int)(seed >> 40) % 4;
        size_t cap = (size_t)(seed >> 50) % 2 ? 30 : (size_t)(seed >> 45) % 30;
        unsigned char a[32], b[32];
        size_t na = 0, nb = 0;
        int ra = base64_decode(in, n, a, cap, &na, flags);
        int rb = reference_decode(in, n, b, cap, &nb, flags);
        if (ra != rb || (ra == 0 && (na != nb || memcmp(a, b, na) != 0))) {
            fprintf(stderr, "differs on \"%.*s\" flags %d cap %zu: %d/%zu against %d/%zu\n", (int)n,
                    in, flags, cap, ra, na, rb, nb);
            differ++;
        }
    }
    CHECK_INT(differ, 0);
}

int main(void)
{
    RUN(test_rfc4648_vectors);
    RUN(test_strict_is_canonical);
    RUN(test_padding_is_optional_but_checked);
    RUN(test_whitespace);
    RUN(test_alphabet);
    RUN(test_output_capacity);
    RUN(test_agrees_with_reference);
    return CHECK_DONE();
}
