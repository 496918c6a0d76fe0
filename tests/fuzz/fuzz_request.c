/*
 * fuzz_request: a callback from its raw body and X-Cliq-Signature header to
 * the dispatch decision, the way server.c's handle_callback runs it: the
 * signature check, then request_decode inside the thread's cJSON arena.
 *
 * An input is one mode byte, the header's value up to the first '\n', and
 * the body (everything after it):
 *   mode & 3 == 0  the header as given
 *               1  the body signed with the test key (the header line is
 *                  ignored), so the fuzzer gets past the check
 *               2  checks off (serve --no-verify): a NULL keyset
 *               3  no header at all
 *   mode & 4       decode with malloc instead of the arena, so that ASan
 *                  sees every cJSON node on its own
 *
 * The keyset is Zoho's sample key (Zoho's webhook extensions page, docs/cliq-formats.md §6)
 * and a key made at start. Invariants: the check's result is one of its
 * documented values and a body signed by a configured key always passes;
 * a refused request gets a JSON error body (401 or 400); a decoded dispatch
 * names a known type, a handler of [a-z0-9_] and a script path that stays
 * inside the scripts folder (relative, no "." or ".." part, no '\\', no
 * control character, ".lua" at the end); mapping the decision again gives
 * the same decision; the text replies built for it are valid JSON in the
 * handler's shape.
 */
#include "fuzz.h"

#include "cliq/request.h"
#include "cliq/verify.h"
#include "core/arena.h"
#include "core/base64.h"
#include "core/jsonw.h"

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MODE_SIGN     1
#define MODE_SKIP     2
#define MODE_NOHEADER 3
#define MODE_MALLOC   4

/* Zoho's sample key, as the extension page shows it. */
static const char sample_key[] =
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA14O1bOavDLetgBr4p4VI91yg5YdDjxxXGZbpoBFtg5OTlY0J"
    "tBpzHaAyISPfE0b6ckrRk3PHI0y8ZDDhGr/qB85l7fdt8QbkdJtluN77N6O3QWa23Kgn2Ly1dObhvec3k0LSvcqxdiV5"
    "x2l5f7L1qHn1LYi0ha8bxOWxhJ07ydKUt0xpoPDI74KisIrdWFq5FyKnCmdnGowr1mQZNjdebXyo43/oT+v/QrdwoV8F"
    "v+Ob1ZLmczfi9aRuvsZWgTxh4muMRbGZnarN1STklWx3aFUQDhxz1r0AGB38ZCJLKU/kHhaxX1BaMaGKtbHgyDKFZ+ZV"
    "FhVXi7wOtOm6FR0H/QIDAQAB";

static EVP_PKEY *test_key; /* key 1 of the keyset; its private half signs */
static struct verify_keyset *keyset;
static struct verifier *checker; /* the keyset's */
static struct verifier *skipper; /* checks off */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    arena_install_cjson_hooks(); /* as main() does */
    test_key = EVP_RSA_gen(2048);
    FUZZ_CHECK(test_key != NULL);
    unsigned char *der = NULL;
    int derlen = i2d_PUBKEY(test_key, &der);
    FUZZ_CHECK(derlen > 0);
    char *spki = malloc(BASE64_ENCODED_LEN((size_t)derlen) + 1);
    base64_encode(der, (size_t)derlen, spki);
    OPENSSL_free(der);

    const char *specs[] = {sample_key, spki};
    char err[512];
    keyset = verify_keyset_load(specs, 2, err, sizeof err);
    if (!keyset)
        fuzz_fail(__FILE__, __LINE__, "test keyset: %s", err);
    free(spki);
    checker = verifier_new(keyset);
    skipper = verifier_new(NULL);
    FUZZ_CHECK(checker && skipper);
    return 0;
}

/* The base64 RSA-SHA256 signature of body by the test key. Caller frees. */
static char *sign(const char *body, size_t len)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char sig[512];
    size_t n = sizeof sig;
    FUZZ_CHECK(md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, test_key) == 1 &&
               EVP_DigestSign(md, sig, &n, (const unsigned char *)body, len) == 1);
    EVP_MD_CTX_free(md);
    char *out = malloc(BASE64_ENCODED_LEN(n) + 1);
    base64_encode(sig, n, out);
    return out;
}

/* Checks that text is a JSON object, valid UTF-8, and returns its tree
 * (caller frees). Call with the arena closed. */
static cJSON *json_object(const char *text, size_t len)
{
    FUZZ_CHECK(strlen(text) == len);
    FUZZ_CHECK(fuzz_utf8_valid(text, len));
    cJSON *root = fuzz_json_parse(text, len);
    if (!root || !cJSON_IsObject(root))
        fuzz_fail(__FILE__, __LINE__, "not a JSON object: %s", text);
    return root;
}

/* The 401 and 400 answers: {"error": msg, "request_id": id}. */
static void check_error_body(const char *msg)
{
    size_t len;
    char *text = jsonw_error_body(msg, "fuzz-1", &len);
    cJSON *root = json_object(text, len);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "error");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(root, "request_id");
    FUZZ_CHECK(cJSON_IsString(e) && e->valuestring[0]);
    FUZZ_CHECK(cJSON_IsString(id) && strcmp(id->valuestring, "fuzz-1") == 0);
    /* Valid UTF-8 goes through as it is. */
    if (fuzz_utf8_valid(msg, strlen(msg)))
        FUZZ_CHECK(strcmp(e->valuestring, msg) == 0);
    cJSON_Delete(root);
    free(text);
}

static int handler_word(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

/* The script path stays inside the scripts folder. */
static void check_script_path(const char *script, size_t cap)
{
    size_t n = strnlen(script, cap);
    FUZZ_CHECK(n > 0 && n < cap);
    FUZZ_CHECK(script[0] != '/');
    FUZZ_CHECK(n > 4 && strcmp(script + n - 4, ".lua") == 0);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)script[i];
        FUZZ_CHECK(c >= 0x20 && c != 0x7f && c != '\\');
    }
    /* No part is empty, "." or "..", or any other dot file. */
    const char *p = script;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t part = slash ? (size_t)(slash - p) : strlen(p);
        FUZZ_CHECK(part > 0);
        FUZZ_CHECK(!(part == 1 && p[0] == '.'));
        FUZZ_CHECK(!(part == 2 && p[0] == '.' && p[1] == '.'));
        FUZZ_CHECK(p[0] != '.');
        if (!slash)
            break;
        p = slash + 1;
    }
}

static const char *json_string(const cJSON *obj, const char *key)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(it) ? it->valuestring : NULL;
}

/* What the dispatch decision promises, against the body it came from. */
static void check_dispatch(const struct request_dispatch *d, const cJSON *json)
{
    FUZZ_CHECK(cJSON_IsObject(json));
    const char *type = json_string(json, "type");
    FUZZ_CHECK(type && d->type && strcmp(type, d->type) == 0);
    int known = 0;
    for (const char *const *t = request_types; *t; t++)
        known |= strcmp(*t, d->type) == 0;
    FUZZ_CHECK(known);
    int per_component = -1;
    const char *folder = request_type_path(d->type, &per_component);
    FUZZ_CHECK(folder && per_component >= 0);

    /* The handler: as on the wire, and a plain word. */
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(json, "handler");
    const char *wire = cJSON_IsString(h) ? h->valuestring : json_string(h, "type");
    FUZZ_CHECK(wire && strcmp(wire, d->wire) == 0);
    FUZZ_CHECK(handler_word(d->wire) && handler_word(d->key));
    if (d->entry) {
        FUZZ_CHECK(strcmp(d->entry->type, d->type) == 0);
        FUZZ_CHECK(strcmp(d->entry->wire, d->wire) == 0);
        FUZZ_CHECK(strcmp(d->entry->key, d->key) == 0);
        FUZZ_CHECK(request_key_known(d->type, d->key));
    } else {
        size_t n = strlen(d->wire), k = strlen(d->key);
        FUZZ_CHECK(k <= n && strncmp(d->wire, d->key, k) == 0);
        FUZZ_CHECK(k == n || strcmp(d->wire + k, "_handler") == 0);
    }
    if (strcmp(d->type, "bot") != 0)
        FUZZ_CHECK(d->action[0] == '\0');

    /* The script: the type's folder and the component's name, inside. */
    check_script_path(d->script, sizeof d->script);
    if (per_component) {
        size_t f = strlen(folder), n = strlen(d->name);
        FUZZ_CHECK(n > 0 && n <= REQUEST_NAME_MAX);
        FUZZ_CHECK(strchr(d->name, '/') == NULL);
        FUZZ_CHECK(strncmp(d->script, folder, f) == 0);
        FUZZ_CHECK(strncmp(d->script + f, d->name, n) == 0);
        FUZZ_CHECK(strcmp(d->script + f + n, ".lua") == 0);
        /* Bots are named by unique_name, falling back to name. */
        const char *un = strcmp(d->type, "bot") == 0 ? json_string(json, "unique_name") : NULL;
        const char *nm = json_string(json, "name");
        FUZZ_CHECK((un && strcmp(un, d->name) == 0) || (nm && strcmp(nm, d->name) == 0));
    } else {
        FUZZ_CHECK(d->name[0] == '\0');
        FUZZ_CHECK(strcmp(d->script, folder) == 0);
    }

    /* The same decision from its own parts. */
    struct request_dispatch again;
    char err[512];
    FUZZ_CHECK(
        request_map(d->type, d->wire, d->name[0] ? d->name : NULL, &again, err, sizeof err) == 0);
    FUZZ_CHECK(strcmp(again.script, d->script) == 0 && strcmp(again.key, d->key) == 0 &&
               again.entry == d->entry);
}

/* The replies the host builds for this handler when it fails or answers
 * with text: {"output": ...} in the handler's shape. `text` is anything
 * from the body (it may be invalid UTF-8). Call with the arena closed. */
static void check_text_replies(const struct request_dispatch *d, const char *text)
{
    for (int failure = 0; failure <= 1; failure++) {
        size_t len;
        char *reply = request_text_reply(d, text, failure, &len);
        cJSON *root = json_object(reply, len);
        const cJSON *out = cJSON_GetObjectItemCaseSensitive(root, "output");
        FUZZ_CHECK(out != NULL);
        enum request_error_reply kind = d->entry ? d->entry->error_reply : ERROR_REPLY_TEXT;
        if (kind == ERROR_REPLY_EMPTY || !text[0]) {
            FUZZ_CHECK(cJSON_IsString(out) && out->valuestring[0] == '\0');
        } else if (kind == ERROR_REPLY_STATUS) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(out, "status");
            FUZZ_CHECK(cJSON_IsNumber(st) && st->valuedouble == (failure ? 500 : 200));
            FUZZ_CHECK(json_string(out, "message") != NULL);
        } else {
            const char *t = json_string(out, "text");
            FUZZ_CHECK(t != NULL);
            if (fuzz_utf8_valid(text, strlen(text)))
                FUZZ_CHECK(strcmp(t, text) == 0);
            if (kind == ERROR_REPLY_BANNER)
                FUZZ_CHECK(json_string(out, "status") != NULL);
        }
        cJSON_Delete(root);
        free(reply);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0];
    data++;
    size--;
    const uint8_t *nl = memchr(data, '\n', size);
    size_t hlen = nl ? (size_t)(nl - data) : size;
    size_t blen = nl ? size - hlen - 1 : 0;

    /* A header value is a C string, as libmicrohttpd hands it over. */
    char *header = malloc(hlen + 1);
    memcpy(header, data, hlen);
    header[hlen] = '\0';
    /* The body as server.c holds it: its bytes, then a NUL not counted. */
    char *body = malloc(blen + 1);
    if (blen)
        memcpy(body, nl + 1, blen);
    body[blen] = '\0';

    enum verify_result vr;
    int key = -1;
    switch (mode & 3) {
    case MODE_SIGN: {
        char *sig = sign(body, blen);
        vr = verifier_check(checker, body, blen, sig, &key);
        FUZZ_CHECK(vr == VERIFY_OK && key == 1);
        /* Whitespace and one pair of quotes around it are ignored. */
        size_t n = strlen(sig);
        char *quoted = malloc(n + 5);
        snprintf(quoted, n + 5, " \"%s\"\t", sig);
        key = -1;
        FUZZ_CHECK(verifier_check(checker, body, blen, quoted, &key) == VERIFY_OK && key == 1);
        free(quoted);
        free(sig);
        break;
    }
    case MODE_SKIP:
        vr = verifier_check(skipper, body, blen, header, &key);
        FUZZ_CHECK(vr == VERIFY_SKIPPED && key == -1);
        break;
    case MODE_NOHEADER:
        vr = verifier_check(checker, body, blen, NULL, &key);
        FUZZ_CHECK(vr == VERIFY_MISSING && key == -1);
        break;
    default:
        vr = verifier_check(checker, body, blen, header, &key);
        FUZZ_CHECK(vr == VERIFY_OK || vr == VERIFY_EMPTY || vr == VERIFY_NOT_BASE64 ||
                   vr == VERIFY_BAD_LENGTH || vr == VERIFY_MISMATCH);
        FUZZ_CHECK(vr == VERIFY_OK ? key == 0 || key == 1 : key == -1);
        break;
    }
    const char *why = verify_result_text(vr);
    FUZZ_CHECK(why && why[0]);
    if (vr != VERIFY_OK && vr != VERIFY_SKIPPED) {
        check_error_body(why); /* 401 */
        goto done;
    }

    /* As handle_callback: the tree lives in the arena until the handler
     * has its request object, and goes with arena_close(). */
    int in_arena = !(mode & MODE_MALLOC);
    if (in_arena)
        arena_open();
    cJSON *json = (cJSON *)1;
    struct request_dispatch d;
    char err[512] = "";
    char name[REQUEST_NAME_MAX + 1] = "";
    int rc = request_decode(body, blen, &json, &d, err, sizeof err);
    if (rc == 0) {
        check_dispatch(&d, json);
        /* Something the body chose, for the text replies below. */
        snprintf(name, sizeof name, "%s", d.name[0] ? d.name : d.action);
    } else {
        FUZZ_CHECK(rc == -1 && json == NULL);
        FUZZ_CHECK(err[0] != '\0');
    }
    if (in_arena)
        arena_close();
    else
        cJSON_Delete(json);

    if (rc == 0)
        check_text_replies(&d, name);
    else
        check_error_body(err); /* 400 */
done:
    free(body);
    free(header);
    return 0;
}
