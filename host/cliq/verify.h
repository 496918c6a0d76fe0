/*
 * verify: Cliq's public keys and the X-Cliq-Signature check.
 *
 * Cliq signs the exact raw body with RSA PKCS#1 v1.5 over SHA-256 and sends
 * the base64 signature in X-Cliq-Signature. The keys come from the
 * extension's page: a one-line base64 X.509 SubjectPublicKeyInfo. A keyset
 * holds every configured key (rotation: a request signed by any of them is
 * accepted); it is parsed once at start and then shared read-only by all
 * workers. Each worker owns a verifier, which keeps its OpenSSL contexts
 * between requests so that a check allocates nothing.
 */
#ifndef CLIQHOST_VERIFY_H
#define CLIQHOST_VERIFY_H

#include <stddef.h>

struct verify_keyset;
struct verifier;

/* The longest X-Cliq-Signature value considered (a 8192-bit RSA signature
 * is 1368 base64 characters). */
#define VERIFY_MAX_SIG_HEADER 2048

enum verify_result {
    VERIFY_OK = 0,
    VERIFY_MISSING,    /* no X-Cliq-Signature header */
    VERIFY_EMPTY,      /* the header is there but blank */
    VERIFY_NOT_BASE64, /* not base64, or absurdly long */
    VERIFY_BAD_LENGTH, /* decodes to a length no configured key signs */
    VERIFY_MISMATCH,   /* no configured key verifies it over this body */
    VERIFY_SKIPPED,    /* checks are off (development switch) */
};

/* A short sentence for the 401 body and the log. Static storage. */
const char *verify_result_text(enum verify_result r);

/* Parses `n` key specs, each the base64 SPKI text (whitespace allowed), an
 * inline PEM block, or a path to a file holding either (or DER). On failure
 * returns NULL and writes into `err` which key failed and why. Caller frees
 * the keyset with verify_keyset_free(). */
struct verify_keyset *verify_keyset_load(const char *const *specs, size_t n, char *err,
                                         size_t errlen);
void verify_keyset_free(struct verify_keyset *ks);
size_t verify_keyset_count(const struct verify_keyset *ks);
/* "RSA-2048 SHA256:1a2b3c4d5e6f7081 (keys/cliq.pub)"; borrowed from ks. */
const char *verify_keyset_describe(const struct verify_keyset *ks, size_t i);

/* Makes a verifier for one thread. `ks` must outlive it; NULL ks makes a
 * verifier that skips checks (development switch). Caller frees with
 * verifier_free(). Returns NULL if OpenSSL cannot set up the contexts. */
struct verifier *verifier_new(const struct verify_keyset *ks);
void verifier_free(struct verifier *v);

/* The SHA-256 of a body, as verifier_check_digest hands it back. */
#define VERIFY_DIGEST_LEN 32

/* Checks `sig` (the header's value, NULL when absent; spaces and tabs
 * around it and one pair of double quotes are ignored; the base64 must be
 * canonical) against the body. On VERIFY_OK, *key_index (if not NULL) is
 * the 0-based key that matched. */
enum verify_result verifier_check(struct verifier *v, const void *body, size_t body_len,
                                  const char *sig, int *key_index);
/* As verifier_check, and on VERIFY_OK also writes the body's SHA-256 (what
 * the signature covers) to `digest`: the replay memory's key. */
enum verify_result verifier_check_digest(struct verifier *v, const void *body, size_t body_len,
                                         const char *sig, int *key_index,
                                         unsigned char digest[VERIFY_DIGEST_LEN]);

#endif
