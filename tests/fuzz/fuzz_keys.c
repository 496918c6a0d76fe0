/*
 * fuzz_keys: verify_keyset_load on any text an operator might pass as
 * --key or in `keys = {...}`: base64 SPKI, PEM, DER in a file, garbage.
 *
 * An input is one mode byte and the rest:
 *   mode & 3 == 0  the rest is one key spec, given inline
 *               1  the rest is written to a file and its path is the spec
 *                  (mode & 4: a path relative to the working folder;
 *                   mode & 8: with whitespace around it, as pasted)
 *               2  two specs: Zoho's sample key, then the rest inline
 *               3  the rest split at NUL bytes into up to four specs
 *
 * Invariants: nothing crashes or leaks; a keyset that loads has one RSA key
 * of at least 2048 bits per spec and describes each; one that does not
 * names the spec that failed. Every loaded keyset is then asked to verify a
 * fixed signature: it must pass exactly when a loaded key is the fixed key
 * (whatever form it came in), with that key's index, and a signature over
 * another body, or one of zeros, must never pass.
 */
#include "fuzz.h"

#include "cliq/verify.h"

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The fixed key (the same as corpus/fuzz_keys/spki-base64) and its
 * signature of fixed_body; the private half was thrown away. */
static const char fixed_key[] =
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAt9LAAfyou9ZTWtf8t75qfsalCEYp2t3JRONOgyODvYeZsNPh"
    "lA7QXLNFC3AmwhQJmE4iFIy8YRLu+AxeTQtxb4MVndSNgVKiPPXMacOdRfAKSvcsQpW9uCnDP3CBY4jH7azoAgqySub6"
    "kt+XNV8c/GVWA8BYeZkNmgCcDhZNtTgK5oeu9yGNx/3AMfDOS4SuEToCcOSSGm7z4mydLqkSMQo88w2r8v6EeeNQwMIt"
    "qI/zCPWMOZEskh9JaJsWudEjVZOPLmMRIAef19pWzZNkw/8/MzbIL6dtL0AghGfEpt1DqgHSfHss9RCTgDrRgrGX9o5r"
    "IQYZV6nhJGfa3PlZCQIDAQAB";
static const char fixed_sig[] =
    "JgebvC4pslKQSB2XuqJLjTwADZH7WTPflliM0nyFC7N3CF/7q4hwQHbFsef/VNnFysXCo5E2oJNIsI30TzsjFRBL81Bx"
    "XiaGFMJ6UKL70fdIB/ghjZ8r7Vc3m31Xl7RCUJw5kWD3cGR8X9AC6740E5Nl5QrhlBBvzqeZpIgNRGJipw6KoE5XkWFH"
    "2bUTVsB4JjN7z6im2u9BD4v9q0dZfze4xOP/ae+2DdNXfeiZ+EcS/m6ZvvAu5EMP6FOcNL8Hxr02Mwn+l5peSvF5S0gn"
    "Cwgb8BKDyTJhyvxCInqPc0X/EZBsRYKlAZ61zM8HJtukbbY/pSQTMAOPZihRpcLZbw==";
static const char fixed_body[] = "fuzz_keys: the fixed body every loaded key is asked to verify";

/* Zoho's sample key (Zoho's webhook extensions page, docs/cliq-formats.md §6). */
static const char sample_key[] =
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA14O1bOavDLetgBr4p4VI91yg5YdDjxxXGZbpoBFtg5OTlY0J"
    "tBpzHaAyISPfE0b6ckrRk3PHI0y8ZDDhGr/qB85l7fdt8QbkdJtluN77N6O3QWa23Kgn2Ly1dObhvec3k0LSvcqxdiV5"
    "x2l5f7L1qHn1LYi0ha8bxOWxhJ07ydKUt0xpoPDI74KisIrdWFq5FyKnCmdnGowr1mQZNjdebXyo43/oT+v/QrdwoV8F"
    "v+Ob1ZLmczfi9aRuvsZWgTxh4muMRbGZnarN1STklWx3aFUQDhxz1r0AGB38ZCJLKU/kHhaxX1BaMaGKtbHgyDKFZ+ZV"
    "FhVXi7wOtOm6FR0H/QIDAQAB";

#define MAX_SPECS 4

static char fixed_fp[40]; /* "SHA256:<16 hex>" as verify_keyset_describe writes it */
static char zeros_sig[700];
static char key_path[600]; /* absolute */
static char key_rel[1200]; /* the same file, relative to the working folder */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* The key file lives in a folder of our own; the relative path to it
     * climbs from the working folder to the root ("../../tmp/..."). */
    const char *dir = fuzz_tmpdir("fuzz-keys");
    snprintf(key_path, sizeof key_path, "%s/key.pub", dir);
    char cwd[512];
    FUZZ_CHECK(getcwd(cwd, sizeof cwd) != NULL);
    size_t at = 0;
    for (const char *p = cwd; *p; p++)
        if (*p == '/' && p[1] && at + 3 < sizeof key_rel)
            at += (size_t)snprintf(key_rel + at, sizeof key_rel - at, "../");
    snprintf(key_rel + at, sizeof key_rel - at, "%s", key_path + 1);

    const char *specs[] = {fixed_key};
    char err[512];
    struct verify_keyset *ks = verify_keyset_load(specs, 1, err, sizeof err);
    if (!ks)
        fuzz_fail(__FILE__, __LINE__, "fixed key: %s", err);
    const char *fp = strstr(verify_keyset_describe(ks, 0), "SHA256:");
    FUZZ_CHECK(fp && strlen(fp) > 23);
    snprintf(fixed_fp, sizeof fixed_fp, "%.23s", fp);
    verify_keyset_free(ks);

    /* 256 zero bytes: the right length for a 2048-bit key. */
    memset(zeros_sig, 'A', 340);
    memcpy(zeros_sig + 340, "AA==", 5);
    return 0;
}

/* What a loaded keyset promises. */
static void check_keyset(struct verify_keyset *ks, size_t n)
{
    FUZZ_CHECK(verify_keyset_count(ks) == n);
    int fixed_at = -1;
    for (size_t i = 0; i < n; i++) {
        const char *d = verify_keyset_describe(ks, i);
        int bits = 0, used = 0;
        FUZZ_CHECK(d && sscanf(d, "RSA-%d SHA256:%*16[0-9a-f] (%n", &bits, &used) == 1);
        FUZZ_CHECK(used > 0 && bits >= 2048);
        if (fixed_at < 0 && strncmp(d + strcspn(d, " ") + 1, fixed_fp, strlen(fixed_fp)) == 0)
            fixed_at = (int)i;
    }
    struct verifier *v = verifier_new(ks);
    FUZZ_CHECK(v != NULL);
    int key = -1;
    enum verify_result r = verifier_check(v, fixed_body, strlen(fixed_body), fixed_sig, &key);
    if (fixed_at >= 0) {
        if (r != VERIFY_OK || key != fixed_at)
            fuzz_fail(__FILE__, __LINE__, "the fixed key (%d) does not verify: %s (key %d)",
                      fixed_at, verify_result_text(r), key);
    } else {
        FUZZ_CHECK(r == VERIFY_MISMATCH || r == VERIFY_BAD_LENGTH);
    }
    /* Another body, and a signature of zeros, never pass. */
    r = verifier_check(v, fixed_body, strlen(fixed_body) - 1, fixed_sig, &key);
    FUZZ_CHECK(r == VERIFY_MISMATCH || r == VERIFY_BAD_LENGTH);
    r = verifier_check(v, fixed_body, strlen(fixed_body), zeros_sig, &key);
    FUZZ_CHECK(r == VERIFY_MISMATCH || r == VERIFY_BAD_LENGTH);
    verifier_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    data++;
    size--;
    /* The rest as a C string (specs are C strings: a NUL ends one). */
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';

    const char *specs[MAX_SPECS];
    size_t n = 0;
    char path[700];
    int wrote = 0;
    switch (mode & 3) {
    case 0:
        specs[n++] = text;
        break;
    case 1: {
        FILE *f = fopen(key_path, "wb");
        FUZZ_CHECK(f != NULL);
        FUZZ_CHECK(fwrite(data, 1, size, f) == size);
        FUZZ_CHECK(fclose(f) == 0);
        wrote = 1;
        const char *p = (mode & 4) ? key_rel : key_path;
        snprintf(path, sizeof path, (mode & 8) ? " \r\n\t%s \n" : "%s", p);
        specs[n++] = path;
        break;
    }
    case 2:
        specs[n++] = sample_key;
        specs[n++] = text;
        break;
    default:
        for (size_t at = 0; n < MAX_SPECS && at <= size; at += strlen(text + at) + 1)
            specs[n++] = text + at;
        break;
    }

    char err[512] = "";
    struct verify_keyset *ks = verify_keyset_load(specs, n, err, sizeof err);
    if (ks) {
        check_keyset(ks, n);
        verify_keyset_free(ks);
    } else {
        /* "key <i> (<label>): <why>", i counting from 1. */
        size_t which = 0;
        int used = 0;
        if (sscanf(err, "key %zu (%n", &which, &used) != 1 || used == 0 || which < 1 || which > n ||
            !strstr(err, "): "))
            fuzz_fail(__FILE__, __LINE__, "error names no key: %s", err);
    }
    if (wrote)
        unlink(key_path);
    free(text);
    return 0;
}
