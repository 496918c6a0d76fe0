/* hooksig: other tools' webhook signatures (see hooksig.h). */
#include "cliq/hooksig.h"

#include "core/base64.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define SHA256_LEN 32
/* The most entries a webhook-signature header may hold (a sender signs with
 * one or two secrets at a time, during a rotation). */
#define HOOKSIG_MAX_SIGNATURES 16

/* Fails the check with a message. Returns -1. */
static int refuse(struct hooksig_result *res, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int refuse(struct hooksig_result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->err, sizeof res->err, fmt, ap);
    va_end(ap);
    return -1;
}

/* HMAC-SHA256 of the `n` parts, in order, keyed by k, into out. Returns 0,
 * or -1 when OpenSSL fails. */
static int hmac_sha256(const struct config_hook_key *k, const void *const *parts,
                       const size_t *lens, size_t n, unsigned char out[SHA256_LEN])
{
    int rc = -1;
    size_t outlen = 0;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (!ctx || !EVP_MAC_init(ctx, k->bytes, k->len, params))
        goto cleanup;
    for (size_t i = 0; i < n; i++)
        if (lens[i] && !EVP_MAC_update(ctx, parts[i], lens[i]))
            goto cleanup;
    if (!EVP_MAC_final(ctx, out, &outlen, SHA256_LEN) || outlen != SHA256_LEN)
        goto cleanup;
    rc = 0;
cleanup:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}

/* Whether `sig` (32 bytes) is the HMAC-SHA256 of the parts under any of
 * h's keys: 1, 0, or -1 when OpenSSL fails. Every key is tried, matched or
 * not, so the time taken does not say which one matched. */
static int any_key_signs(const struct config_hook *h, const void *const *parts, const size_t *lens,
                         size_t n, const unsigned char *sig)
{
    int match = 0;
    for (size_t i = 0; i < h->nsecrets; i++) {
        unsigned char want[SHA256_LEN];
        if (hmac_sha256(&h->keys[i], parts, lens, n, want) < 0)
            return -1;
        match |= CRYPTO_memcmp(want, sig, SHA256_LEN) == 0;
        OPENSSL_cleanse(want, sizeof want);
    }
    return match;
}

/* The header's value with spaces and tabs at both ends left out, as
 * start and length; NULL when the header is absent. */
static const char *header_trimmed(hooksig_header_fn header, void *ud, const char *name, size_t *n)
{
    const char *v = header(ud, name);
    if (!v)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t len = strlen(v);
    while (len && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    *n = len;
    return v;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes exactly 64 hex digits, either case, into 32 bytes. Returns 0 or -1. */
static int hex32(const char *s, size_t n, unsigned char out[SHA256_LEN])
{
    if (n != 2 * SHA256_LEN)
        return -1;
    for (size_t i = 0; i < SHA256_LEN; i++) {
        int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Decodes base64 (padding optional) that must give exactly 32 bytes.
 * Returns 0 or -1. */
static int b64_32(const char *s, size_t n, unsigned char out[SHA256_LEN])
{
    unsigned char buf[BASE64_DECODED_MAX(64)];
    size_t got = 0;
    if (n > 64 || base64_decode(s, n, buf, sizeof buf, &got, 0) < 0 || got != SHA256_LEN)
        return -1;
    memcpy(out, buf, SHA256_LEN);
    return 0;
}

/* github and hmac-sha256: one header, prefix + the body's HMAC in hex or
 * base64. */
static int check_body_hmac(const struct config_hook *h, hooksig_header_fn header, void *ud,
                           const char *body, size_t len, struct hooksig_result *res)
{
    int github = h->scheme == CONFIG_HOOK_GITHUB;
    const char *name = github ? "X-Hub-Signature-256" : h->header;
    const char *prefix = github ? "sha256=" : h->prefix ? h->prefix : "";
    int base64 = !github && h->base64;
    size_t n, plen = strlen(prefix);
    const char *v = header_trimmed(header, ud, name, &n);
    if (!v)
        return github
                   ? refuse(res, "missing X-Hub-Signature-256 header (GitHub signs every delivery "
                                 "when the webhook has a secret)")
                   : refuse(res, "missing %s header", name);
    unsigned char sig[SHA256_LEN];
    if (github && (n < plen || memcmp(v, prefix, plen) != 0 || hex32(v + plen, n - plen, sig) < 0))
        return refuse(res, "X-Hub-Signature-256 is not \"sha256=\" and 64 hex digits");
    if (!github && (n < plen || memcmp(v, prefix, plen) != 0))
        return refuse(res, "%s does not start with \"%s\"", name, prefix);
    if (!github && (base64 ? b64_32(v + plen, n - plen, sig) : hex32(v + plen, n - plen, sig)) < 0)
        return refuse(res, "%s is not %s%s%s", name, plen ? "\"" : "", prefix,
                      base64 ? (plen ? "\" and the base64 of 32 bytes" : "the base64 of 32 bytes")
                             : (plen ? "\" and 64 hex digits" : "64 hex digits"));
    const void *parts[] = {body};
    size_t lens[] = {len};
    int m = any_key_signs(h, parts, lens, 1, sig);
    if (m < 0)
        return refuse(res, "cannot compute HMAC-SHA256 (OpenSSL failed)");
    if (!m)
        return refuse(res, "%s does not match the body (wrong secret, or the body was changed)",
                      name);
    return 0;
}

/* standard-webhooks: "<id>.<timestamp>.<body>" signed by any key, in any
 * "v1,<base64>" entry of webhook-signature; the timestamp within
 * tolerance_s of now either way. */
static int check_standard(const struct config_hook *h, hooksig_header_fn header, void *ud,
                          const char *body, size_t len, long long now_s, struct hooksig_result *res)
{
    size_t idn = 0, tsn = 0, sn = 0;
    const char *id = header_trimmed(header, ud, "webhook-id", &idn);
    const char *ts = header_trimmed(header, ud, "webhook-timestamp", &tsn);
    const char *sigs = header_trimmed(header, ud, "webhook-signature", &sn);
    if (!id || !ts || !sigs || !idn || !tsn || !sn)
        return refuse(res,
                      "missing %s header (a Standard Webhooks delivery has webhook-id, "
                      "webhook-timestamp and webhook-signature)",
                      !id || !idn   ? "webhook-id"
                      : !ts || !tsn ? "webhook-timestamp"
                                    : "webhook-signature");
    if (idn >= sizeof res->id)
        return refuse(res, "webhook-id is longer than %zu bytes", sizeof res->id - 1);
    long long t = 0;
    if (tsn > 12)
        return refuse(res, "webhook-timestamp is not a Unix time in seconds");
    for (size_t i = 0; i < tsn; i++) {
        if (ts[i] < '0' || ts[i] > '9')
            return refuse(res, "webhook-timestamp is not a Unix time in seconds");
        t = t * 10 + (ts[i] - '0');
    }
    if (now_s - t > h->tolerance_s)
        return refuse(res,
                      "webhook-timestamp is %lld s old, more than the hook's tolerance_s (%ld)",
                      now_s - t, h->tolerance_s);
    if (t - now_s > h->tolerance_s)
        return refuse(res,
                      "webhook-timestamp is %lld s in the future, more than the hook's "
                      "tolerance_s (%ld)",
                      t - now_s, h->tolerance_s);
    /* Every entry is counted before any is tried: a sender sends one per
     * secret it signs with, and a header of hundreds of entries must not
     * cost hundreds of HMACs over the body. */
    int entries = 0;
    for (const char *p = sigs, *end = sigs + sn; p < end;) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end)
            break;
        entries++;
        while (p < end && *p != ' ' && *p != '\t')
            p++;
    }
    if (entries > HOOKSIG_MAX_SIGNATURES)
        return refuse(res, "webhook-signature has %d entries; at most %d are checked", entries,
                      HOOKSIG_MAX_SIGNATURES);
    /* Each key's signature is computed once, then compared with every
     * "v1," entry (v1a and others are not ours), in constant time. */
    const void *parts[] = {id, ".", ts, ".", body};
    size_t lens[] = {idn, 1, tsn, 1, len};
    unsigned char want[CONFIG_HOOK_SECRETS_MAX][SHA256_LEN];
    size_t nkeys = h->nsecrets < CONFIG_HOOK_SECRETS_MAX ? h->nsecrets : CONFIG_HOOK_SECRETS_MAX;
    int checked = 0, match = 0, failed = 0;
    for (size_t k = 0; k < nkeys && !failed; k++)
        failed = hmac_sha256(&h->keys[k], parts, lens, 5, want[k]) < 0;
    const char *p = sigs, *end = sigs + sn;
    while (p < end && !failed) {
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const char *e = p;
        while (e < end && *e != ' ' && *e != '\t')
            e++;
        if (e - p > 3 && memcmp(p, "v1,", 3) == 0) {
            unsigned char sig[SHA256_LEN];
            checked++;
            if (b64_32(p + 3, (size_t)(e - p - 3), sig) == 0)
                for (size_t k = 0; k < nkeys; k++)
                    match |= CRYPTO_memcmp(want[k], sig, SHA256_LEN) == 0;
        }
        p = e;
    }
    OPENSSL_cleanse(want, sizeof want);
    if (failed)
        return refuse(res, "cannot compute HMAC-SHA256 (OpenSSL failed)");
    if (!match)
        return refuse(res, "no webhook-signature matches (v1 signatures checked: %d)", checked);
    memcpy(res->id, id, idn);
    res->id[idn] = '\0';
    res->ts = t;
    return 0;
}

/* bearer: the whole token compared in constant time, through its SHA-256
 * so that tokens of different lengths take the same time too. */
static int check_bearer(const struct config_hook *h, hooksig_header_fn header, void *ud,
                        struct hooksig_result *res)
{
    const char *name = h->header ? h->header : "Authorization";
    size_t n;
    const char *v = header_trimmed(header, ud, name, &n);
    if (!v)
        return refuse(res, "missing %s header", name);
    if (!h->header) {
        if (n < 7 || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t'))
            return refuse(res, "Authorization is not \"Bearer <token>\"");
        v += 6;
        n -= 6;
        while (n && (*v == ' ' || *v == '\t')) {
            v++;
            n--;
        }
        if (!n)
            return refuse(res, "Authorization is not \"Bearer <token>\"");
    }
    unsigned char got[SHA256_LEN], want[SHA256_LEN];
    unsigned int glen = 0, wlen = 0;
    int match = 0;
    if (!EVP_Digest(v, n, got, &glen, EVP_sha256(), NULL))
        return refuse(res, "cannot compute SHA-256 (OpenSSL failed)");
    for (size_t i = 0; i < h->nsecrets; i++) {
        if (!EVP_Digest(h->keys[i].bytes, h->keys[i].len, want, &wlen, EVP_sha256(), NULL))
            return refuse(res, "cannot compute SHA-256 (OpenSSL failed)");
        match |= CRYPTO_memcmp(got, want, SHA256_LEN) == 0;
    }
    if (!match)
        return h->header ? refuse(res, "%s does not match the hook's token", name)
                         : refuse(res, "the bearer token does not match");
    return 0;
}

int hooksig_check(const struct config_hook *h, hooksig_header_fn header, void *ud, const char *body,
                  size_t len, long long now_s, struct hooksig_result *res)
{
    memset(res, 0, sizeof *res);
    if (!h->nsecrets)
        return refuse(res, "the hook has no secret");
    switch (h->scheme) {
    case CONFIG_HOOK_GITHUB:
    case CONFIG_HOOK_HMAC_SHA256:
        return check_body_hmac(h, header, ud, body, len, res);
    case CONFIG_HOOK_STANDARD_WEBHOOKS:
        return check_standard(h, header, ud, body, len, now_s, res);
    case CONFIG_HOOK_BEARER:
        return check_bearer(h, header, ud, res);
    }
    return refuse(res, "the hook's scheme is unknown");
}
