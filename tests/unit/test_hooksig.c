/* Unit tests for hooksig: each scheme valid, wrong, missing, malformed,
 * stale and from the future; rotation; header names in any case; the
 * published test vectors of GitHub and of the Standard Webhooks spec. Hooks
 * are read from config files by config_load_file, as the host reads them;
 * the signatures the tests make come from OpenSSL's one-shot HMAC(). */
#include "check.h"
#include "cliq/hooksig.h"
#include "core/base64.h"
#include "core/config.h"

#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

static char cfg_path[] = "/tmp/cliqhost-test-hooksig-XXXXXX";
static struct config cfg;

/* Loads `text` as the config file into cfg (freed by the next load).
 * Returns 0, or -1 with the reason in err. */
static int load(const char *text, char *err, size_t errlen)
{
    config_free(&cfg);
    config_defaults(&cfg);
    FILE *f = fopen(cfg_path, "w");
    fputs(text, f);
    fclose(f);
    return config_load_file(&cfg, cfg_path, err, errlen);
}

/* The hook `name` of the config `text`; fails the test when it does not load. */
static const struct config_hook *hook(const char *text, const char *name)
{
    char err[512] = "";
    int rc = load(text, err, sizeof err);
    CHECK_STR(err, "");
    CHECK_INT(rc, 0);
    const struct config_hook *h = config_hook(&cfg, name);
    CHECK(h != NULL);
    return h;
}

/* A request's headers: name/value pairs; the lookup ignores case, as
 * libmicrohttpd's does. */
struct headers {
    const char *kv[16];
    size_t n;
};

static const char *lookup(void *ud, const char *name)
{
    struct headers *hs = ud;
    for (size_t i = 0; i + 1 < hs->n; i += 2)
        if (strcasecmp(hs->kv[i], name) == 0)
            return hs->kv[i + 1];
    return NULL;
}

static struct hooksig_result res;

/* Checks body against h with headers given as name, value, ..., NULL. */
static int check(const struct config_hook *h, const char *body, long long now, ...)
{
    struct headers hs = {{0}, 0};
    va_list ap;
    va_start(ap, now);
    const char *s;
    while ((s = va_arg(ap, const char *)) && hs.n < 16)
        hs.kv[hs.n++] = s;
    va_end(ap);
    return hooksig_check(h, lookup, &hs, body, strlen(body), now, &res);
}

/* HMAC-SHA256 of data under key, as hex (upper when `upper`) or base64. */
static const char *mac(const void *key, size_t klen, const char *data, int b64, int upper)
{
    static char out[128];
    unsigned char md[32];
    unsigned int n = 0;
    HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, strlen(data), md, &n);
    if (b64) {
        base64_encode(md, n, out);
        return out;
    }
    for (unsigned int i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, upper ? "%02X" : "%02x", md[i]);
    return out;
}

/* GitHub's test vector, from "Validating webhook deliveries"
 * (docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries,
 * "Testing the webhook payload validation"); checked with
 * `printf 'Hello, World!' | openssl dgst -sha256 -hmac "It's a Secret to Everybody"`. */
#define GH_SECRET "It's a Secret to Everybody"
#define GH_BODY   "Hello, World!"
#define GH_SIG    "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

static const char gh_cfg[] = "hooks = { gh = { scheme = \"github\", secret = \"" GH_SECRET "\" } }";

static void test_github_vector(void)
{
    const struct config_hook *h = hook(gh_cfg, "gh");
    CHECK_INT(check(h, GH_BODY, 0, "X-Hub-Signature-256", GH_SIG, NULL), 0);
    CHECK_STR(res.err, "");
    CHECK_STR(res.id, "");
    CHECK_INT(res.ts, 0);
    /* Header names in any case; hex digits in any case; spaces around. */
    CHECK_INT(check(h, GH_BODY, 0, "x-hub-signature-256", GH_SIG, NULL), 0);
    CHECK_INT(check(h, GH_BODY, 0, "X-HUB-SIGNATURE-256",
                    "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17 ",
                    NULL),
              0);
}

static void test_github_refused(void)
{
    const struct config_hook *h = hook(gh_cfg, "gh");
    CHECK_INT(check(h, "Hello, World?", 0, "X-Hub-Signature-256", GH_SIG, NULL), -1);
    CHECK_STR(res.err, "X-Hub-Signature-256 does not match the body (wrong secret, or the body was "
                       "changed)");
    CHECK_INT(check(h, GH_BODY, 0, "X-Hub-Signature", "sha1=0123", NULL), -1);
    CHECK_STR(res.err, "missing X-Hub-Signature-256 header (GitHub signs every delivery when the "
                       "webhook has a secret)");
    const char *bad[] = {
        "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", /* no prefix */
        "sha1=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1",   /* 63 */
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e177", /* 65 */
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1g",
        "sha256=",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(check(h, GH_BODY, 0, "X-Hub-Signature-256", bad[i], NULL), -1);
        CHECK_STR(res.err, "X-Hub-Signature-256 is not \"sha256=\" and 64 hex digits");
    }
    /* Another secret signs the same body: refused, and the message holds
     * neither the secret nor the signature it expected. */
    h = hook("hooks = { gh = { scheme = \"github\", secret = \"another secret\" } }", "gh");
    CHECK_INT(check(h, GH_BODY, 0, "X-Hub-Signature-256", GH_SIG, NULL), -1);
    CHECK_HAS(res.err, "does not match the body");
    CHECK(!strstr(res.err, "another"));
    char want[80];
    snprintf(want, sizeof want, "%s", mac("another secret", 14, GH_BODY, 0, 0));
    CHECK(!strstr(res.err, want));
}

/* An empty body (NULL, as a server may hand it over) is signed like any other. */
static void test_github_empty_body(void)
{
    const struct config_hook *h = hook(gh_cfg, "gh");
    char sig[80];
    snprintf(sig, sizeof sig, "sha256=%s", mac(GH_SECRET, strlen(GH_SECRET), "", 0, 0));
    struct headers hs = {{"X-Hub-Signature-256", sig}, 2};
    CHECK_INT(hooksig_check(h, lookup, &hs, NULL, 0, 0, &res), 0);
    CHECK_INT(hooksig_check(h, lookup, &hs, "x", 1, 0, &res), -1);
    hs.kv[1] = GH_SIG;
    CHECK_INT(hooksig_check(h, lookup, &hs, NULL, 0, 0, &res), -1);
    CHECK_HAS(res.err, "does not match the body");
}

static void test_github_rotation(void)
{
    const struct config_hook *h =
        hook("hooks = { gh = { scheme = \"github\", secret = \"the old one\", secrets = { "
             "\"" GH_SECRET "\" } } }",
             "gh");
    CHECK_INT(h->nsecrets, 2);
    CHECK_INT(check(h, GH_BODY, 0, "X-Hub-Signature-256", GH_SIG, NULL), 0);
    char sig[80];
    snprintf(sig, sizeof sig, "sha256=%s", mac("the old one", 11, GH_BODY, 0, 0));
    CHECK_INT(check(h, GH_BODY, 0, "X-Hub-Signature-256", sig, NULL), 0);
    snprintf(sig, sizeof sig, "sha256=%s", mac("a third one", 11, GH_BODY, 0, 0));
    CHECK_INT(check(h, GH_BODY, 0, "X-Hub-Signature-256", sig, NULL), -1);
}

/* The Standard Webhooks test vector: the spec's reference libraries sign
 * it in their tests (standard-webhooks/standard-webhooks,
 * libraries/go/webhook_test.go TestWebhookSign, and the Python, JavaScript
 * and other libraries' tests), with this secret, id, timestamp and payload
 * giving this signature. SW_OTHER is the "invalid signature" of the same
 * Go test. */
#define SW_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define SW_ID     "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define SW_TS     1614265330LL
#define SW_TS_S   "1614265330"
#define SW_BODY   "{\"test\": 2432232314}"
#define SW_SIG    "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SW_OTHER  "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="

static const char sw_cfg[] =
    "hooks = { sw = { scheme = \"standard-webhooks\", secret = \"" SW_SECRET "\" } }";

/* Checks the vector's headers with the signature header `sig` at `now`. */
static int check_sw(const struct config_hook *h, const char *body, const char *id, const char *ts,
                    const char *sig, long long now)
{
    return check(h, body, now, "webhook-id", id, "webhook-timestamp", ts, "webhook-signature", sig,
                 NULL);
}

static void test_standard_vector(void)
{
    const struct config_hook *h = hook(sw_cfg, "sw");
    CHECK_INT(h->tolerance_s, 300);
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS), 0);
    CHECK_STR(res.err, "");
    CHECK_STR(res.id, SW_ID);
    CHECK_INT(res.ts, SW_TS);
    /* The secret without its "whsec_" prefix is the same key. */
    h = hook("hooks = { sw = { scheme = \"standard-webhooks\", secret = "
             "\"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\" } }",
             "sw");
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS), 0);
    /* Header names as senders spell them. */
    CHECK_INT(check(h, SW_BODY, SW_TS, "Webhook-Id", SW_ID, "WEBHOOK-TIMESTAMP", SW_TS_S,
                    "Webhook-Signature", SW_SIG, NULL),
              0);
}

static void test_standard_tampered(void)
{
    const struct config_hook *h = hook(sw_cfg, "sw");
    CHECK_INT(check_sw(h, "{\"test\": 2432232315}", SW_ID, SW_TS_S, SW_SIG, SW_TS), -1);
    CHECK_STR(res.err, "no webhook-signature matches (v1 signatures checked: 1)");
    CHECK_STR(res.id, "");
    CHECK_INT(check_sw(h, SW_BODY, "msg_p5jXN8AQM9LWM0D4loKWxJeK", SW_TS_S, SW_SIG, SW_TS), -1);
    CHECK_STR(res.err, "no webhook-signature matches (v1 signatures checked: 1)");
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, "1614265331", SW_SIG, SW_TS), -1);
    CHECK_STR(res.err, "no webhook-signature matches (v1 signatures checked: 1)");
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_OTHER, SW_TS), -1);
    /* A signature that is not base64 of 32 bytes is checked and fails. */
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, "v1,not*base64 v1,AAAA", SW_TS), -1);
    CHECK_STR(res.err, "no webhook-signature matches (v1 signatures checked: 2)");
    /* Another key. */
    h = hook("hooks = { sw = { scheme = \"standard-webhooks\", secret = "
             "\"whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==\" } }",
             "sw");
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS), -1);
    CHECK(!strstr(res.err, "c2VjcmV0"));
}

static void test_standard_signature_list(void)
{
    const struct config_hook *h = hook(sw_cfg, "sw");
    /* The Go library's "valid multi sig": other versions are skipped, any v1 may match. */
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S,
                       SW_OTHER " v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " SW_SIG
                                " " SW_OTHER,
                       SW_TS),
              0);
    /* Extra spaces between entries. */
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, "  " SW_OTHER "   " SW_SIG "  ", SW_TS), 0);
    /* v1a (asymmetric) and unversioned entries are not HMAC signatures. */
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S,
                       "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= "
                       "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= v1, V1,"
                       "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
                       SW_TS),
              -1);
    CHECK_STR(res.err, "no webhook-signature matches (v1 signatures checked: 0)");
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_OTHER " " SW_OTHER, SW_TS), -1);
    CHECK_STR(res.err, "no webhook-signature matches (v1 signatures checked: 2)");
}

static void test_standard_window(void)
{
    const struct config_hook *h = hook(sw_cfg, "sw");
    /* 300 s either way passes; one more does not. */
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS + 300), 0);
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS - 300), 0);
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS + 412), -1);
    CHECK_STR(res.err, "webhook-timestamp is 412 s old, more than the hook's tolerance_s (300)");
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS - 412), -1);
    CHECK_STR(res.err,
              "webhook-timestamp is 412 s in the future, more than the hook's tolerance_s (300)");
    h = hook("hooks = { sw = { scheme = \"standard-webhooks\", secret = \"" SW_SECRET "\", "
             "tolerance_s = 60 } }",
             "sw");
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS + 60), 0);
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS + 61), -1);
    CHECK_STR(res.err, "webhook-timestamp is 61 s old, more than the hook's tolerance_s (60)");
    /* A stale timestamp is refused before any signature is looked at. */
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, "garbage", SW_TS + 1000), -1);
    CHECK_HAS(res.err, "1000 s old");
}

static void test_standard_missing_and_malformed(void)
{
    const struct config_hook *h = hook(sw_cfg, "sw");
    CHECK_INT(
        check(h, SW_BODY, SW_TS, "webhook-timestamp", SW_TS_S, "webhook-signature", SW_SIG, NULL),
        -1);
    CHECK_HAS(res.err, "missing webhook-id header");
    CHECK_INT(check(h, SW_BODY, SW_TS, "webhook-id", SW_ID, "webhook-signature", SW_SIG, NULL), -1);
    CHECK_HAS(res.err, "missing webhook-timestamp header");
    CHECK_INT(check(h, SW_BODY, SW_TS, "webhook-id", SW_ID, "webhook-timestamp", SW_TS_S, NULL),
              -1);
    CHECK_HAS(res.err, "missing webhook-signature header");
    CHECK_INT(check_sw(h, SW_BODY, "", SW_TS_S, SW_SIG, SW_TS), -1);
    CHECK_HAS(res.err, "missing webhook-id header");
    const char *bad_ts[] = {"-1614265330", "1614265330.5", "16142653e2", "abc", "1614265330000000"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
        CHECK_INT(check_sw(h, SW_BODY, SW_ID, bad_ts[i], SW_SIG, SW_TS), -1);
        CHECK_STR(res.err, "webhook-timestamp is not a Unix time in seconds");
    }
    char long_id[300];
    memset(long_id, 'a', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    CHECK_INT(check_sw(h, SW_BODY, long_id, SW_TS_S, SW_SIG, SW_TS), -1);
    CHECK_STR(res.err, "webhook-id is longer than 255 bytes");
}

static void test_standard_rotation(void)
{
    /* secret and secrets merge; a signature by either key passes. */
    const struct config_hook *h =
        hook("hooks = { sw = { scheme = \"standard-webhooks\", "
             "secret = \"whsec_c2VjcmV0LW9mLWEtcm90YXRlZC1lbmRwb2ludA==\", "
             "secrets = { \"" SW_SECRET "\" } } }",
             "sw");
    CHECK_INT(h->nsecrets, 2);
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_SIG, SW_TS), 0);
    /* The first key's signature, made here from its decoded bytes. */
    char sig[80];
    snprintf(sig, sizeof sig, "v1,%s",
             mac("secret-of-a-rotated-endpoint", 28, SW_ID "." SW_TS_S "." SW_BODY, 1, 0));
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, sig, SW_TS), 0);
    CHECK_INT(check_sw(h, SW_BODY, SW_ID, SW_TS_S, SW_OTHER, SW_TS), -1);
}

static const char bearer_cfg[] =
    "hooks = { am = { scheme = \"bearer\", secrets = { \"old-token-1234\", \"s3cr3t-token\" } },\n"
    "          gf = { scheme = \"bearer\", header = \"X-Grafana-Token\", secret = \"gf-token-99\" "
    "},\n"
    "          au = { scheme = \"bearer\", header = \"authorization\", secret = \"s3cr3t-token\" } "
    "}";

static void test_bearer(void)
{
    const struct config_hook *h = hook(bearer_cfg, "am");
    CHECK(h->header == NULL);
    CHECK_INT(check(h, "{}", 0, "Authorization", "Bearer s3cr3t-token", NULL), 0);
    CHECK_INT(check(h, "{}", 0, "authorization", "bearer   s3cr3t-token ", NULL), 0);
    CHECK_INT(check(h, "{}", 0, "AUTHORIZATION", "BEARER old-token-1234", NULL), 0); /* rotation */
    CHECK_INT(check(h, "{}", 0, NULL), -1);
    CHECK_STR(res.err, "missing Authorization header");
    const char *not_bearer[] = {"s3cr3t-token", "Basic czNjcjN0LXRva2Vu", "Bearer", "Bearer   ",
                                "Bearers3cr3t-token"};
    for (size_t i = 0; i < sizeof not_bearer / sizeof not_bearer[0]; i++) {
        CHECK_INT(check(h, "{}", 0, "Authorization", not_bearer[i], NULL), -1);
        CHECK_STR(res.err, "Authorization is not \"Bearer <token>\"");
    }
    /* Wrong, shorter, longer, different case: the whole token must match. */
    const char *wrong[] = {"Bearer s3cr3t-tokeN", "Bearer s3cr3t-toke", "Bearer s3cr3t-token2",
                           "Bearer s3cr3t-token old-token-1234", "Bearer S3CR3T-TOKEN"};
    for (size_t i = 0; i < sizeof wrong / sizeof wrong[0]; i++) {
        CHECK_INT(check(h, "{}", 0, "Authorization", wrong[i], NULL), -1);
        CHECK_STR(res.err, "the bearer token does not match");
    }
    /* header = "Authorization" in any case is the default form. */
    h = hook(bearer_cfg, "au");
    CHECK(h->header == NULL);
    CHECK_INT(check(h, "{}", 0, "Authorization", "Bearer s3cr3t-token", NULL), 0);
}

static void test_bearer_named_header(void)
{
    const struct config_hook *h = hook(bearer_cfg, "gf");
    CHECK_STR(h->header, "X-Grafana-Token");
    CHECK_INT(check(h, "{}", 0, "x-grafana-token", "gf-token-99", NULL), 0);
    CHECK_INT(check(h, "{}", 0, "X-Grafana-Token", "Bearer gf-token-99", NULL), -1);
    CHECK_STR(res.err, "X-Grafana-Token does not match the hook's token");
    CHECK_INT(check(h, "{}", 0, "Authorization", "Bearer gf-token-99", NULL), -1);
    CHECK_STR(res.err, "missing X-Grafana-Token header");
    CHECK_INT(check(h, "{}", 0, "X-Grafana-Token", "gf-token-9", NULL), -1);
    CHECK_INT(check(h, "{}", 0, "X-Grafana-Token", "", NULL), -1);
}

static const char hmac_cfg[] =
    "hooks = { hx = { scheme = \"hmac-sha256\", header = \"X-Signature\", prefix = \"sha256=\",\n"
    "                 secret = \"hex-key-0001\" },\n"
    "          hb = { scheme = \"hmac-sha256\", header = \"X-Sig-B64\", encoding = \"base64\",\n"
    "                 secrets = { \"b64-key-old\", \"b64-key-new\" } } }";

static void test_hmac_hex(void)
{
    const struct config_hook *h = hook(hmac_cfg, "hx");
    const char *body = "{\"event\":\"deploy\"}";
    char sig[100];
    snprintf(sig, sizeof sig, "sha256=%s", mac("hex-key-0001", 12, body, 0, 0));
    CHECK_INT(check(h, body, 0, "x-signature", sig, NULL), 0);
    snprintf(sig, sizeof sig, "sha256=%s", mac("hex-key-0001", 12, body, 0, 1));
    CHECK_INT(check(h, body, 0, "X-SIGNATURE", sig, NULL), 0); /* upper-case hex */
    CHECK_INT(check(h, "{\"event\":\"deploy!\"}", 0, "X-Signature", sig, NULL), -1);
    CHECK_STR(res.err,
              "X-Signature does not match the body (wrong secret, or the body was changed)");
    /* A prefix mismatch. */
    snprintf(sig, sizeof sig, "sha1=%s", mac("hex-key-0001", 12, body, 0, 0));
    CHECK_INT(check(h, body, 0, "X-Signature", sig, NULL), -1);
    CHECK_STR(res.err, "X-Signature does not start with \"sha256=\"");
    CHECK_INT(check(h, body, 0, "X-Signature", mac("hex-key-0001", 12, body, 0, 0), NULL), -1);
    CHECK_STR(res.err, "X-Signature does not start with \"sha256=\"");
    /* Base64 where hex is configured, and a short signature. */
    snprintf(sig, sizeof sig, "sha256=%s", mac("hex-key-0001", 12, body, 1, 0));
    CHECK_INT(check(h, body, 0, "X-Signature", sig, NULL), -1);
    CHECK_STR(res.err, "X-Signature is not \"sha256=\" and 64 hex digits");
    CHECK_INT(check(h, body, 0, "X-Signature", "sha256=abcd", NULL), -1);
    CHECK_STR(res.err, "X-Signature is not \"sha256=\" and 64 hex digits");
    CHECK_INT(check(h, body, 0, NULL), -1);
    CHECK_STR(res.err, "missing X-Signature header");
}

static void test_hmac_base64(void)
{
    const struct config_hook *h = hook(hmac_cfg, "hb");
    CHECK_INT(h->base64, 1);
    CHECK_STR(h->prefix, "");
    const char *body = "payload";
    CHECK_INT(check(h, body, 0, "X-Sig-B64", mac("b64-key-new", 11, body, 1, 0), NULL), 0);
    CHECK_INT(check(h, body, 0, "X-Sig-B64", mac("b64-key-old", 11, body, 1, 0), NULL), 0);
    /* Padding may be left out. */
    char sig[100];
    snprintf(sig, sizeof sig, "%s", mac("b64-key-new", 11, body, 1, 0));
    sig[strlen(sig) - 1] = '\0';
    CHECK_INT(check(h, body, 0, "X-Sig-B64", sig, NULL), 0);
    CHECK_INT(check(h, body, 0, "X-Sig-B64", mac("b64-key-other", 13, body, 1, 0), NULL), -1);
    CHECK_STR(res.err, "X-Sig-B64 does not match the body (wrong secret, or the body was changed)");
    CHECK_INT(check(h, body, 0, "X-Sig-B64", mac("b64-key-new", 11, body, 0, 0), NULL), -1);
    CHECK_STR(res.err, "X-Sig-B64 is not the base64 of 32 bytes");
    CHECK_INT(check(h, body, 0, "X-Sig-B64", "AAAA", NULL), -1);
    CHECK_STR(res.err, "X-Sig-B64 is not the base64 of 32 bytes");
}

/* Config mistakes name the hook and the field, and never a secret. */
static void test_config_errors(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"hooks = 1", "'hooks' must be a table"},
        {"hooks = { [\"a.b\"] = { scheme = \"github\", secret = \"x\" } }",
         "hooks: 'a.b' is not a hook name"},
        {"hooks = { [\"\"] = { scheme = \"github\", secret = \"x\" } }", "is not a hook name"},
        {"hooks = { [string.rep(\"a\", 65)] = { scheme = \"github\", secret = \"x\" } }",
         "is not a hook name"},
        {"hooks = { g = \"x\" }", "hooks.g must be a table"},
        {"hooks = { g = { secret = \"x\" } }", "hooks.g: scheme 'nil' is not one of"},
        {"hooks = { g = { scheme = \"gitlab\", secret = \"x\" } }",
         "hooks.g: scheme 'gitlab' is not one of github, standard-webhooks, bearer, hmac-sha256"},
        {"hooks = { g = { scheme = \"github\", secret = \"x\", color = 1 } }",
         "hooks.g: unknown field 'color' (a github hook takes scheme, secret, secrets)"},
        {"hooks = { g = { scheme = \"github\", secret = \"x\", header = \"X\" } }",
         "hooks.g: unknown field 'header'"},
        {"hooks = { g = { scheme = \"bearer\", secret = \"x\", prefix = \"p\" } }",
         "hooks.g: unknown field 'prefix' (a bearer hook takes scheme, secret, secrets, header)"},
        {"hooks = { g = { scheme = \"github\" } }", "hooks.g: no secret"},
        {"hooks = { g = { scheme = \"github\", secret = os.getenv(\"CLIQHOST_TEST_UNSET_VAR\") } }",
         "hooks.g: no secret"},
        {"hooks = { g = { scheme = \"github\", secret = env \"CLIQHOST_TEST_UNSET_VAR\" } }",
         "hooks.g: no secret (CLIQHOST_TEST_UNSET_VAR is unset)"},
        {"hooks = { g = { scheme = \"github\", secrets = { \"a\", env \"CLIQHOST_TEST_UNSET_VAR\" "
         "} "
         "} }",
         "hooks.g: no secret (CLIQHOST_TEST_UNSET_VAR is unset)"},
        {"hooks = { g = { scheme = \"github\", secrets = { os.getenv(\"CLIQHOST_TEST_UNSET_VAR\"), "
         "\"x\" } } }",
         "hooks.g: 'secrets' must be a list of strings without holes"},
        {"hooks = { g = { scheme = \"github\", secrets = \"x\" } }",
         "hooks.g: 'secrets' must be a list of strings"},
        {"hooks = { g = { scheme = \"github\", secret = 12 } }",
         "hooks.g: 'secret' must be a string (got number)"},
        {"hooks = { g = { scheme = \"github\", secret = \"\" } }", "hooks.g: 'secret' is empty"},
        {"hooks = { g = { scheme = \"standard-webhooks\", secret = \"whsec_not base64!\" } }",
         "hooks.g: 'secret' is not a Standard Webhooks secret"},
        {"hooks = { g = { scheme = \"standard-webhooks\", secret = \"whsec_\" } }",
         "hooks.g: 'secret' is not a Standard Webhooks secret"},
        {"hooks = { g = { scheme = \"standard-webhooks\", secret = \"" SW_SECRET
         "\", tolerance_s = 0 } }",
         "hooks.g: 'tolerance_s' must be an integer from 1 to 86400"},
        {"hooks = { g = { scheme = \"hmac-sha256\", secret = \"x\" } }",
         "hooks.g: scheme hmac-sha256 needs 'header'"},
        {"hooks = { g = { scheme = \"hmac-sha256\", secret = \"x\", header = \"X Sig\" } }",
         "hooks.g: 'header' must be an HTTP header name"},
        {"hooks = { g = { scheme = \"hmac-sha256\", secret = \"x\", header = \"X\", encoding = "
         "\"hexa\" } }",
         "hooks.g: 'encoding' must be \"hex\" or \"base64\""},
        {"hooks = { g = { scheme = \"bearer\", secret = \"tok en \" } }",
         "hooks.g: 'secret' cannot be sent in a header"},
        {"hooks = { g = { scheme = \"bearer\", secret = \"tok\\nen\" } }",
         "hooks.g: 'secret' cannot be sent in a header"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        CHECK_INT(load(cases[i].text, err, sizeof err), -1);
        CHECK_HAS(err, cases[i].want);
        CHECK_HAS(err, cfg_path); /* the file is named */
        CHECK_INT(cfg.nhooks, 0);
    }
    char err[512] = "";
    CHECK_INT(load("hooks = { g = { scheme = \"github\", secrets = { \"1\", \"2\", \"3\", \"4\", "
                   "\"5\", \"6\", \"7\", \"8\", \"9\", \"10\", \"11\", \"12\", \"13\", \"14\", "
                   "\"15\", \"16\", \"17\" } } }",
                   err, sizeof err),
              -1);
    CHECK_HAS(err, "hooks.g: more than 16 secrets");
    /* A secret is never in a message. */
    CHECK_INT(load("hooks = { g = { scheme = \"hmac-sha256\", secret = \"hush-hush-1234\" } }", err,
                   sizeof err),
              -1);
    CHECK(!strstr(err, "hush"));
}

static void test_config_hooks_table(void)
{
    char err[512] = "";
    CHECK_INT(load("hooks = { a = { scheme = \"github\", secret = \"k1\" },\n"
                   "          [\"B_2-x\"] = { scheme = \"bearer\", secret = \"k2\" } }",
                   err, sizeof err),
              0);
    CHECK_STR(err, "");
    CHECK_INT(cfg.nhooks, 2);
    CHECK(config_hook(&cfg, "a") != NULL);
    CHECK(config_hook(&cfg, "B_2-x") != NULL);
    CHECK(config_hook(&cfg, "b_2-x") == NULL);
    CHECK(config_hook(&cfg, "nope") == NULL);
    CHECK_STR(config_hook_scheme_name(config_hook(&cfg, "a")->scheme), "github");
    CHECK_STR(config_hook_scheme_name(CONFIG_HOOK_STANDARD_WEBHOOKS), "standard-webhooks");
    /* The Standard Webhooks key is the decoded bytes (24 of them here). */
    const struct config_hook *h = hook(sw_cfg, "sw");
    CHECK_INT(h->keys[0].len, 24);
    CHECK_STR(h->secrets[0], SW_SECRET);
    /* A later hooks replaces the earlier one whole. */
    CHECK_INT(load("hooks = { a = { scheme = \"github\", secret = \"k1\" } }\n"
                   "hooks = { b = { scheme = \"github\", secret = \"k2\" } }",
                   err, sizeof err),
              0);
    CHECK_INT(cfg.nhooks, 1);
    CHECK(config_hook(&cfg, "b") != NULL);
}

int main(void)
{
    int fd = mkstemp(cfg_path);
    if (fd < 0)
        return 2;
    close(fd);
    config_defaults(&cfg);
    RUN(test_github_vector);
    RUN(test_github_refused);
    RUN(test_github_empty_body);
    RUN(test_github_rotation);
    RUN(test_standard_vector);
    RUN(test_standard_tampered);
    RUN(test_standard_signature_list);
    RUN(test_standard_window);
    RUN(test_standard_missing_and_malformed);
    RUN(test_standard_rotation);
    RUN(test_bearer);
    RUN(test_bearer_named_header);
    RUN(test_hmac_hex);
    RUN(test_hmac_base64);
    RUN(test_config_errors);
    RUN(test_config_hooks_table);
    config_free(&cfg);
    unlink(cfg_path);
    return CHECK_DONE();
}
