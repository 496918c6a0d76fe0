/* verify: Cliq public keys and X-Cliq-Signature checks (see verify.h). */
#include "cliq/verify.h"

#include "core/base64.h"
#include "core/mem.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

/* A key file bigger than this is not a public key. */
#define KEY_FILE_MAX (64 * 1024)
/* Cliq's keys are RSA-2048; anything weaker is refused. */
#define KEY_MIN_BITS 2048

struct verify_key {
    EVP_PKEY *pkey;
    int size; /* signature length in bytes */
    char describe[320];
};

struct verify_keyset {
    struct verify_key *keys;
    size_t n;
};

struct verifier {
    const struct verify_keyset *ks; /* NULL: checks skipped */
    EVP_MD *sha256;
    EVP_MD_CTX *md;
    EVP_PKEY_CTX **ctx; /* one per key, initialised for verify once */
};

const char *verify_result_text(enum verify_result r)
{
    switch (r) {
    case VERIFY_OK:
        return "signature verified";
    case VERIFY_MISSING:
        return "missing X-Cliq-Signature header";
    case VERIFY_EMPTY:
        return "empty X-Cliq-Signature header";
    case VERIFY_NOT_BASE64:
        return "X-Cliq-Signature is not valid base64";
    case VERIFY_BAD_LENGTH:
        return "X-Cliq-Signature has the wrong length for the configured keys";
    case VERIFY_MISMATCH:
        return "X-Cliq-Signature does not match the body for any configured key";
    case VERIFY_SKIPPED:
        return "signature check skipped (development mode)";
    }
    return "unknown signature result";
}

/* Appends OpenSSL's most recent error reason, if any, and clears the queue. */
static void openssl_reason(char *out, size_t n)
{
    unsigned long e = ERR_peek_last_error();
    if (e && n > 3) {
        out[0] = ':';
        out[1] = ' ';
        ERR_error_string_n(e, out + 2, n - 2);
    } else if (n) {
        out[0] = '\0';
    }
    ERR_clear_error();
}

static EVP_PKEY *decode_with(const char *input_type, const unsigned char *data, size_t len)
{
    EVP_PKEY *pkey = NULL;
    OSSL_DECODER_CTX *dctx = OSSL_DECODER_CTX_new_for_pkey(&pkey, input_type, NULL, NULL,
                                                           EVP_PKEY_PUBLIC_KEY, NULL, NULL);
    if (!dctx)
        return NULL;
    const unsigned char *p = data;
    size_t left = len;
    if (!OSSL_DECODER_from_data(dctx, &p, &left)) {
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    OSSL_DECODER_CTX_free(dctx);
    return pkey;
}

/* Turns key text (base64 SPKI with any whitespace, or PEM) or raw DER into a
 * key. Returns NULL and a reason in `why`. */
static EVP_PKEY *parse_key_bytes(const char *data, size_t len, int maybe_der, char *why,
                                 size_t whylen)
{
    if (memmem(data, len, "-----BEGIN", 10)) {
        EVP_PKEY *k = decode_with("PEM", (const unsigned char *)data, len);
        if (!k) {
            char r[200];
            openssl_reason(r, sizeof r);
            snprintf(why, whylen, "PEM block is not a public key%s", r);
        }
        return k;
    }
    size_t cap = BASE64_DECODED_MAX(len);
    unsigned char *der = xmalloc(cap);
    size_t derlen = 0;
    EVP_PKEY *k = NULL;
    if (base64_decode(data, len, der, cap, &derlen, BASE64_SKIP_SPACE) == 0 && derlen > 0) {
        const unsigned char *p = der;
        k = d2i_PUBKEY(NULL, &p, (long)derlen);
        if (!k) {
            /* Also take PKCS#1 "RSAPublicKey" DER, which some tools print. */
            k = decode_with("DER", der, derlen);
        }
        if (!k) {
            char r[200];
            openssl_reason(r, sizeof r);
            snprintf(why, whylen, "base64 decodes, but not to a public key%s", r);
        }
    } else if (maybe_der) {
        k = decode_with("DER", (const unsigned char *)data, len);
        if (!k) {
            ERR_clear_error();
            snprintf(why, whylen, "file holds neither base64, PEM nor DER public key");
        }
    } else {
        snprintf(why, whylen, "not a file, and not base64 key text");
    }
    free(der);
    return k;
}

/* Reads a whole small file. Returns 0, or -1 with a reason. Caller frees. */
static int read_key_file(const char *path, char **out, size_t *outlen, char *why, size_t whylen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, whylen, "cannot open: %s", strerror(errno));
        return -1;
    }
    char *data = xmalloc(KEY_FILE_MAX + 1);
    size_t n = fread(data, 1, KEY_FILE_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > KEY_FILE_MAX) {
        snprintf(why, whylen, bad ? "read error" : "file is too big to be a public key");
        free(data);
        return -1;
    }
    data[n] = '\0';
    *out = data;
    *outlen = n;
    return 0;
}

/* Key text is long and uses only the base64 alphabet and whitespace; a
 * path has dots, dashes or is short. */
static int looks_like_base64(const char *s, size_t n)
{
    if (n < 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!isalnum(c) && c != '+' && c != '/' && c != '=' && !isspace(c))
            return 0;
    }
    return 1;
}

/* Parses one key spec into k. Returns 0, or -1 with `err` naming the key. */
static int load_one(const char *spec, size_t index, struct verify_key *k, char *err, size_t errlen)
{
    /* Trim the spec: keys pasted from a web page often carry a newline. */
    while (*spec && isspace((unsigned char)*spec))
        spec++;
    size_t len = strlen(spec);
    while (len && isspace((unsigned char)spec[len - 1]))
        len--;

    char *path = xstrndup(spec, len);
    struct stat st;
    int is_file = len > 0 && stat(path, &st) == 0 && S_ISREG(st.st_mode);

    /* Name the key in messages: a file by its path, key text by its start. */
    char label[240];
    if (is_file || len <= 40)
        snprintf(label, sizeof label, "%.200s", path);
    else
        snprintf(label, sizeof label, "%.24s\xe2\x80\xa6", spec);

    char why[320] = "";
    EVP_PKEY *pkey = NULL;
    if (len == 0) {
        snprintf(why, sizeof why, "empty key");
    } else if (is_file) {
        char *data;
        size_t dlen;
        if (read_key_file(path, &data, &dlen, why, sizeof why) == 0) {
            pkey = parse_key_bytes(data, dlen, 1, why, sizeof why);
            free(data);
        }
    } else if (memmem(spec, len, "-----BEGIN", 10) || looks_like_base64(spec, len)) {
        pkey = parse_key_bytes(spec, len, 0, why, sizeof why);
    } else {
        snprintf(why, sizeof why,
                 "no such file (and not base64 key text): copy your extension's public key "
                 "from Cliq there, or make a development pair with `cliqhost keygen DIR`");
    }
    free(path);

    if (pkey && !EVP_PKEY_is_a(pkey, "RSA")) {
        snprintf(why, sizeof why, "not an RSA key (Cliq signs with RSA)");
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    if (pkey && EVP_PKEY_get_bits(pkey) < KEY_MIN_BITS) {
        snprintf(why, sizeof why, "RSA key of %d bits is too weak (at least %d)",
                 EVP_PKEY_get_bits(pkey), KEY_MIN_BITS);
        EVP_PKEY_free(pkey);
        pkey = NULL;
    }
    if (!pkey) {
        snprintf(err, errlen, "key %zu (%s): %s", index + 1, label, why);
        return -1;
    }

    /* A short fingerprint lets operators tell keys apart in the log. */
    unsigned char *der = NULL;
    int derlen = i2d_PUBKEY(pkey, &der);
    unsigned char dig[32];
    unsigned int diglen = 0;
    char fp[17] = "?";
    if (derlen > 0 && EVP_Digest(der, (size_t)derlen, dig, &diglen, EVP_sha256(), NULL)) {
        for (int i = 0; i < 8; i++)
            snprintf(fp + 2 * i, 3, "%02x", dig[i]);
    }
    OPENSSL_free(der);
    k->pkey = pkey;
    k->size = EVP_PKEY_get_size(pkey);
    snprintf(k->describe, sizeof k->describe, "RSA-%d SHA256:%s (%s)", EVP_PKEY_get_bits(pkey), fp,
             label);
    return 0;
}

struct verify_keyset *verify_keyset_load(const char *const *specs, size_t n, char *err,
                                         size_t errlen)
{
    struct verify_keyset *ks = xcalloc(1, sizeof *ks);
    ks->keys = xcalloc(n ? n : 1, sizeof *ks->keys);
    for (size_t i = 0; i < n; i++) {
        if (load_one(specs[i], i, &ks->keys[i], err, errlen) < 0) {
            verify_keyset_free(ks);
            return NULL;
        }
        ks->n++;
    }
    return ks;
}

void verify_keyset_free(struct verify_keyset *ks)
{
    if (!ks)
        return;
    for (size_t i = 0; i < ks->n; i++)
        EVP_PKEY_free(ks->keys[i].pkey);
    free(ks->keys);
    free(ks);
}

size_t verify_keyset_count(const struct verify_keyset *ks)
{
    return ks ? ks->n : 0;
}

const char *verify_keyset_describe(const struct verify_keyset *ks, size_t i)
{
    return ks->keys[i].describe;
}

struct verifier *verifier_new(const struct verify_keyset *ks)
{
    struct verifier *v = xcalloc(1, sizeof *v);
    v->ks = ks;
    if (!ks)
        return v;
    v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    v->md = EVP_MD_CTX_new();
    v->ctx = xcalloc(ks->n ? ks->n : 1, sizeof *v->ctx);
    if (!v->sha256 || !v->md)
        goto fail;
    for (size_t i = 0; i < ks->n; i++) {
        EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, ks->keys[i].pkey, NULL);
        v->ctx[i] = c;
        if (!c || EVP_PKEY_verify_init(c) <= 0 ||
            EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) <= 0 ||
            EVP_PKEY_CTX_set_signature_md(c, v->sha256) <= 0)
            goto fail;
    }
    return v;
fail:
    ERR_clear_error();
    verifier_free(v);
    return NULL;
}

void verifier_free(struct verifier *v)
{
    if (!v)
        return;
    if (v->ctx) {
        for (size_t i = 0; v->ks && i < v->ks->n; i++)
            EVP_PKEY_CTX_free(v->ctx[i]);
        free(v->ctx);
    }
    EVP_MD_CTX_free(v->md);
    EVP_MD_free(v->sha256);
    free(v);
}

enum verify_result verifier_check(struct verifier *v, const void *body, size_t body_len,
                                  const char *sig, int *key_index)
{
    unsigned char digest[VERIFY_DIGEST_LEN];
    return verifier_check_digest(v, body, body_len, sig, key_index, digest);
}

enum verify_result verifier_check_digest(struct verifier *v, const void *body, size_t body_len,
                                         const char *sig, int *key_index,
                                         unsigned char digest[VERIFY_DIGEST_LEN])
{
    if (!v->ks)
        return VERIFY_SKIPPED;
    if (!sig)
        return VERIFY_MISSING;
    /* Spaces and tabs around it (HTTP's optional whitespace) and quotes, as
     * in Zoho's sample, are trimmed; nothing else is, and the base64 must
     * be canonical, so one signature has one accepted spelling. */
    size_t n = strlen(sig);
    while (n && (*sig == ' ' || *sig == '\t')) {
        sig++;
        n--;
    }
    while (n && (sig[n - 1] == ' ' || sig[n - 1] == '\t'))
        n--;
    if (n >= 2 && sig[0] == '"' && sig[n - 1] == '"') {
        sig++;
        n -= 2;
    }
    if (n == 0)
        return VERIFY_EMPTY;
    if (n > VERIFY_MAX_SIG_HEADER)
        return VERIFY_NOT_BASE64;

    unsigned char raw[BASE64_DECODED_MAX(VERIFY_MAX_SIG_HEADER)];
    size_t rawlen = 0;
    if (base64_decode(sig, n, raw, sizeof raw, &rawlen, BASE64_STRICT) < 0)
        return VERIFY_NOT_BASE64;

    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int diglen = 0;
    if (!EVP_DigestInit_ex2(v->md, v->sha256, NULL) || !EVP_DigestUpdate(v->md, body, body_len) ||
        !EVP_DigestFinal_ex(v->md, dig, &diglen)) {
        ERR_clear_error();
        return VERIFY_MISMATCH;
    }

    int any_size = 0;
    for (size_t i = 0; i < v->ks->n; i++) {
        if ((size_t)v->ks->keys[i].size != rawlen)
            continue;
        any_size = 1;
        if (EVP_PKEY_verify(v->ctx[i], raw, rawlen, dig, diglen) == 1) {
            if (key_index)
                *key_index = (int)i;
            memcpy(digest, dig, VERIFY_DIGEST_LEN);
            return VERIFY_OK;
        }
    }
    ERR_clear_error();
    return any_size ? VERIFY_MISMATCH : VERIFY_BAD_LENGTH;
}
