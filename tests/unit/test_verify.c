/* Unit tests for verify: every key form Cliq's page and operators produce,
 * keys that must be refused with a message naming them, and signature
 * checks including rotation. Keys are made here with OpenSSL. */
#include "check.h"
#include "cliq/verify.h"
#include "core/base64.h"

#include <openssl/ec.h>
#include <openssl/encoder.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <unistd.h>

static char tmpdir[] = "/tmp/cliqhost-test-verify-XXXXXX";
static EVP_PKEY *key_a, *key_b;

/* The sample key and signature from Zoho's page on webhook-based extensions (docs/cliq-formats.md
 * §6). */
static const char sample_key[] =
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA14O1bOavDLetgBr4p4VI91yg5YdDjxxXGZbpoBFtg5OTlY0J"
    "tBpzHaAyISPfE0b6ckrRk3PHI0y8ZDDhGr/qB85l7fdt8QbkdJtluN77N6O3QWa23Kgn2Ly1dObhvec3k0LSvcqxdiV5"
    "x2l5f7L1qHn1LYi0ha8bxOWxhJ07ydKUt0xpoPDI74KisIrdWFq5FyKnCmdnGowr1mQZNjdebXyo43/oT+v/QrdwoV8F"
    "v+Ob1ZLmczfi9aRuvsZWgTxh4muMRbGZnarN1STklWx3aFUQDhxz1r0AGB38ZCJLKU/kHhaxX1BaMaGKtbHgyDKFZ+ZV"
    "FhVXi7wOtOm6FR0H/QIDAQAB";
static const char sample_sig[] =
    "jSYAaw+5Kd3PMF3PO5kpuMkwKn7++S9WJG2c0iB4kMnRYH1cdNldQPaLQ0DKxLMyzW/pY2XY6t2wtnviQ+qmARr+AQX9"
    "tyDnGOjbbxF/1A9JW1+5VwdB9pNVAC4Rjqp9iI9QdxFfMm7jaEn4P1BVJZ/3oB994/T8IJG3/rZPu4DtULEa0s81fLN8"
    "kRs4Ror87Pj2RmJuSm8cfCi9N38gqNSR9WGXA/GRycpWjVxFtCqROQmrR4CUBmEKrPl31xR9ascY/IBcjxQXoSLnvz0T"
    "/RPkUptqBDBjiJQ57Tq6w6jAkVSyxV4LiAdTj1cmTG28QLjNeyhpfuugTpzjpi3MBQ==";
static const char sample_body[] =
    "{\"name\":\"urlinvokeextension\",\"handler\":{\"type\":\"execution_handler\"},"
    "\"response_url\":\"https://cliq.zoho.com/v2/extensions/2305843009213696807/responses/"
    "17202824105415695206907020\",\"type\":\"command\",\"timestamp\":1569520690703,\"params\":{"
    "\"environment\":{\"data_center\":\"US\"},\"access\":{\"user_id\":\"651652091\",\"user_agent\":"
    "\"Mozilla/5.0 (Macintosh; Intel Mac OS X 10.14; rv:69.0) Gecko/20100101 Firefox/69.0\","
    "\"chat_id\":\"CT_2243226337559778047_661211447-B2\"},\"mentions\":[],\"options\":{},"
    "\"selections\":[],\"arguments\":\"\"}}";

/* The base64 SPKI text of a key, as Cliq's page shows it. Caller frees. */
static char *spki_base64(EVP_PKEY *k)
{
    unsigned char *der = NULL;
    int n = i2d_PUBKEY(k, &der);
    char *out = malloc(BASE64_ENCODED_LEN((size_t)n) + 1);
    base64_encode(der, (size_t)n, out);
    OPENSSL_free(der);
    return out;
}

/* Signs body with k and returns the base64 signature. Caller frees. */
static char *sign(EVP_PKEY *k, const char *body)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[512];
    size_t n = sizeof sig;
    EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k);
    EVP_DigestSign(md, sig, &n, (const unsigned char *)body, strlen(body));
    EVP_MD_CTX_free(md);
    char *out = malloc(BASE64_ENCODED_LEN(n) + 1);
    base64_encode(sig, n, out);
    return out;
}

static char *write_file(const char *name, const void *data, size_t n)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
    return path;
}

static struct verify_keyset *load1(const char *spec, char *err, size_t errlen)
{
    const char *specs[] = {spec};
    return verify_keyset_load(specs, 1, err, errlen);
}

static void test_key_forms(void)
{
    char err[512];
    char *b64 = spki_base64(key_a);
    struct verify_keyset *ks = load1(b64, err, sizeof err);
    CHECK(ks != NULL);
    CHECK_HAS(ks ? verify_keyset_describe(ks, 0) : "", "RSA-2048 SHA256:");
    verify_keyset_free(ks);

    /* Pasted with a trailing newline, wrapped, indented. */
    char messy[2048];
    size_t len = strlen(b64);
    size_t o = 0;
    messy[o++] = ' ';
    for (size_t i = 0; i < len; i++) {
        messy[o++] = b64[i];
        if (i % 64 == 63)
            messy[o++] = '\n';
    }
    messy[o++] = '\r';
    messy[o++] = '\n';
    messy[o] = '\0';
    ks = load1(messy, err, sizeof err);
    CHECK(ks != NULL);
    verify_keyset_free(ks);

    /* A file holding the base64 text. */
    ks = load1(write_file("cliq.pub", messy, strlen(messy)), err, sizeof err);
    CHECK(ks != NULL);
    verify_keyset_free(ks);

    /* A PEM public-key file. */
    BIO *bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key_a);
    char *pem;
    long pemlen = BIO_get_mem_data(bio, &pem);
    ks = load1(write_file("key.pem", pem, (size_t)pemlen), err, sizeof err);
    CHECK(ks != NULL);
    verify_keyset_free(ks);
    /* The same PEM text given inline (in a config file). */
    char inline_pem[4096];
    snprintf(inline_pem, sizeof inline_pem, "%.*s", (int)pemlen, pem);
    ks = load1(inline_pem, err, sizeof err);
    CHECK(ks != NULL);
    verify_keyset_free(ks);
    BIO_free(bio);

    /* A PKCS#1 "RSA PUBLIC KEY" PEM file, as some tools print. */
    unsigned char *p1 = NULL;
    size_t p1len = 0;
    OSSL_ENCODER_CTX *ectx =
        OSSL_ENCODER_CTX_new_for_pkey(key_a, EVP_PKEY_PUBLIC_KEY, "PEM", "type-specific", NULL);
    CHECK(ectx && OSSL_ENCODER_to_data(ectx, &p1, &p1len));
    OSSL_ENCODER_CTX_free(ectx);
    CHECK(p1 && strstr((const char *)p1, "BEGIN RSA PUBLIC KEY"));
    ks = load1(write_file("pkcs1.pem", p1, p1len), err, sizeof err);
    CHECK(ks != NULL);
    verify_keyset_free(ks);
    OPENSSL_free(p1);

    /* A DER file. */
    unsigned char *der = NULL;
    int dn = i2d_PUBKEY(key_a, &der);
    ks = load1(write_file("key.der", der, (size_t)dn), err, sizeof err);
    CHECK(ks != NULL);
    verify_keyset_free(ks);
    OPENSSL_free(der);
    free(b64);
}

static void test_bad_keys_name_the_key(void)
{
    char err[512];
    char *good = spki_base64(key_a);
    const char *specs[] = {good, "not a key at all"};
    CHECK(verify_keyset_load(specs, 2, err, sizeof err) == NULL);
    CHECK_HAS(err, "key 2");

    CHECK(load1("", err, sizeof err) == NULL);
    CHECK_HAS(err, "key 1");
    CHECK_HAS(err, "empty");

    CHECK(load1("keys/missing.pub", err, sizeof err) == NULL);
    CHECK_HAS(err, "keys/missing.pub");
    CHECK_HAS(err, "no such file");

    /* Valid base64, long enough to be key text, that is not a key. */
    CHECK(load1("aGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29ybGQgaGVsbG8gd29y", err,
                sizeof err) == NULL);
    CHECK_HAS(err, "not to a public key");
    /* Short text that is neither a file nor a key. */
    CHECK(load1("aGVsbG8gd29ybGQ=", err, sizeof err) == NULL);
    CHECK_HAS(err, "no such file");

    /* A truncated key. */
    char cut[200];
    snprintf(cut, sizeof cut, "%.120s", good);
    CHECK(load1(cut, err, sizeof err) == NULL);
    CHECK_HAS(err, "key 1");

    /* Not RSA. */
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    char *ecb = spki_base64(ec);
    CHECK(load1(ecb, err, sizeof err) == NULL);
    CHECK_HAS(err, "not an RSA key");
    free(ecb);
    EVP_PKEY_free(ec);

    /* Too weak. */
    EVP_PKEY *weak = EVP_RSA_gen(1024);
    char *wb = spki_base64(weak);
    CHECK(load1(wb, err, sizeof err) == NULL);
    CHECK_HAS(err, "too weak");
    free(wb);
    EVP_PKEY_free(weak);

    /* A file that holds garbage. */
    CHECK(load1(write_file("junk.pub", "hello\n", 6), err, sizeof err) == NULL);
    CHECK_HAS(err, "junk.pub");
    free(good);
}

static void test_signatures(void)
{
    char err[512];
    char *a = spki_base64(key_a), *b = spki_base64(key_b);
    const char *only_a[] = {a};
    const char *only_b[] = {b};
    const char *both[] = {b, a};
    struct verify_keyset *ka = verify_keyset_load(only_a, 1, err, sizeof err);
    struct verify_keyset *kb = verify_keyset_load(only_b, 1, err, sizeof err);
    struct verify_keyset *kab = verify_keyset_load(both, 2, err, sizeof err);
    CHECK(ka && kb && kab);
    struct verifier *va = verifier_new(ka), *vb = verifier_new(kb), *vab = verifier_new(kab);

    const char *body = "{\"type\":\"command\",\"name\":\"deploy\"}";
    char *sig = sign(key_a, body);
    int which = -1;
    CHECK_INT(verifier_check(va, body, strlen(body), sig, &which), VERIFY_OK);
    CHECK_INT(which, 0);
    /* Rotation: the second configured key matches. */
    CHECK_INT(verifier_check(vab, body, strlen(body), sig, &which), VERIFY_OK);
    CHECK_INT(which, 1);
    CHECK_INT(verifier_check(vb, body, strlen(body), sig, NULL), VERIFY_MISMATCH);

    /* The same verifier, reused: good, bad, good. */
    const char *other = "{\"type\":\"command\",\"name\":\"deploY\"}";
    CHECK_INT(verifier_check(va, other, strlen(other), sig, NULL), VERIFY_MISMATCH);
    CHECK_INT(verifier_check(va, body, strlen(body), sig, NULL), VERIFY_OK);
    /* One byte more or less in the body. */
    CHECK_INT(verifier_check(va, body, strlen(body) - 1, sig, NULL), VERIFY_MISMATCH);

    CHECK_INT(verifier_check(va, body, strlen(body), NULL, NULL), VERIFY_MISSING);
    CHECK_INT(verifier_check(va, body, strlen(body), "", NULL), VERIFY_EMPTY);
    CHECK_INT(verifier_check(va, body, strlen(body), "   ", NULL), VERIFY_EMPTY);
    CHECK_INT(verifier_check(va, body, strlen(body), "%%%garbage%%%", NULL), VERIFY_NOT_BASE64);
    CHECK_INT(verifier_check(va, body, strlen(body), "aGVsbG8=", NULL), VERIFY_BAD_LENGTH);

    /* Truncated: whole base64 quanta dropped, then a cut mid-quantum. */
    char cut[1024];
    snprintf(cut, sizeof cut, "%.*s", (int)strlen(sig) - 8, sig);
    CHECK_INT(verifier_check(va, body, strlen(body), cut, NULL), VERIFY_BAD_LENGTH);
    snprintf(cut, sizeof cut, "%.*s", (int)strlen(sig) - 5, sig);
    CHECK(verifier_check(va, body, strlen(body), cut, NULL) != VERIFY_OK);

    /* A flipped bit in the signature. */
    char flipped[1024];
    snprintf(flipped, sizeof flipped, "%s", sig);
    flipped[10] = flipped[10] == 'A' ? 'B' : 'A';
    CHECK_INT(verifier_check(va, body, strlen(body), flipped, NULL), VERIFY_MISMATCH);

    /* Surrounding whitespace and quotes, as in Zoho's sample, are fine. */
    char quoted[1024];
    snprintf(quoted, sizeof quoted, " \"%s\"\t", sig);
    CHECK_INT(verifier_check(va, body, strlen(body), quoted, NULL), VERIFY_OK);

    /* One spelling of the signature only (a replay must not pass as new
     * by spelling the same bytes otherwise): padding is required, the last
     * character's unused bits must be zero, and only spaces and tabs are
     * trimmed. */
    size_t sl = strlen(sig);
    char respelt[1024];
    CHECK(sl > 2 && sig[sl - 1] == '=' && sig[sl - 2] == '='); /* 256 bytes: "xx==" */
    snprintf(respelt, sizeof respelt, "%.*s", (int)sl - 2, sig);
    CHECK_INT(verifier_check(va, body, strlen(body), respelt, NULL), VERIFY_NOT_BASE64);
    snprintf(respelt, sizeof respelt, "%s", sig);
    respelt[sl - 3] ^= 1; /* an unused bit of the last character */
    CHECK_INT(verifier_check(va, body, strlen(body), respelt, NULL), VERIFY_NOT_BASE64);
    snprintf(respelt, sizeof respelt, "%s\v", sig);
    CHECK_INT(verifier_check(va, body, strlen(body), respelt, NULL), VERIFY_NOT_BASE64);
    snprintf(respelt, sizeof respelt, "%s\f\f", sig);
    CHECK_INT(verifier_check(va, body, strlen(body), respelt, NULL), VERIFY_NOT_BASE64);

    /* Too long to be any signature. */
    char *huge = malloc(5000);
    memset(huge, 'A', 4999);
    huge[4999] = '\0';
    CHECK_INT(verifier_check(va, body, strlen(body), huge, NULL), VERIFY_NOT_BASE64);
    free(huge);

    /* Checks off: everything passes as skipped. */
    struct verifier *off = verifier_new(NULL);
    CHECK_INT(verifier_check(off, body, strlen(body), NULL, NULL), VERIFY_SKIPPED);
    verifier_free(off);

    free(sig);
    verifier_free(va);
    verifier_free(vb);
    verifier_free(vab);
    verify_keyset_free(ka);
    verify_keyset_free(kb);
    verify_keyset_free(kab);
    free(a);
    free(b);
}

static void test_zoho_sample(void)
{
    char err[512];
    struct verify_keyset *ks = load1(sample_key, err, sizeof err);
    CHECK(ks != NULL);
    if (!ks) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_HAS(verify_keyset_describe(ks, 0), "RSA-2048");
    struct verifier *v = verifier_new(ks);
    /* The page's signature does not match its (reformatted) sample body:
     * it must be rejected, not crash or pass. */
    CHECK_INT(verifier_check(v, sample_body, strlen(sample_body), sample_sig, NULL),
              VERIFY_MISMATCH);
    verifier_free(v);
    verify_keyset_free(ks);
}

int main(void)
{
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    key_a = EVP_RSA_gen(2048);
    key_b = EVP_RSA_gen(2048);
    RUN(test_key_forms);
    RUN(test_bad_keys_name_the_key);
    RUN(test_signatures);
    RUN(test_zoho_sample);
    EVP_PKEY_free(key_a);
    EVP_PKEY_free(key_b);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return CHECK_DONE();
}
