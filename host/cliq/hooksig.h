/*
 * hooksig: checks the signature of another tool's webhook (POST
 * /hooks/<name>) by the scheme its config entry names (config.h,
 * struct config_hook):
 *
 *   github             X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>
 *   standard-webhooks  webhook-id, webhook-timestamp and webhook-signature
 *                      ("v1,<base64>" entries, space-separated, at most 16) over
 *                      "<id>.<timestamp>.<body>", within tolerance_s of now
 *   bearer             Authorization: Bearer <token>, or a named header
 *                      holding the token as is
 *   hmac-sha256        a named header: prefix + hex or base64 HMAC-SHA256
 *                      of the body
 *
 * Every secret of the hook is tried (rotation); comparisons are in
 * constant time. Pure functions: no state, no I/O, safe from any thread.
 * Dropping repeated Standard Webhooks ids is the caller's (res->id).
 */
#ifndef CLIQHOST_HOOKSIG_H
#define CLIQHOST_HOOKSIG_H

#include "core/config.h"

#include <stddef.h>

/* Looks up a request header by name, case-insensitively; NULL when absent.
 * The value is borrowed until hooksig_check returns. */
typedef const char *(*hooksig_header_fn)(void *ud, const char *name);

struct hooksig_result {
    char err[300]; /* when refused: which check failed, for the 401's JSON error */
    char id[256];  /* standard-webhooks: the webhook-id (for dropping duplicates); else "" */
    long long ts;  /* standard-webhooks: webhook-timestamp (Unix s); else 0 */
};

/* Checks a request to hook `h`: 0 when it passes, -1 with res->err saying
 * which check failed (never a secret or an expected signature). `body` is
 * the raw body of `len` bytes (NULL when len is 0); now_s is the host's clock (Unix seconds).
 * res is filled either way. */
int hooksig_check(const struct config_hook *h, hooksig_header_fn header, void *ud, const char *body,
                  size_t len, long long now_s, struct hooksig_result *res);

#endif
