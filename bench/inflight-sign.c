/*
 * inflight-sign: writes the signed calls of the in-flight benchmark
 * (bench/inflight.sh).
 *
 *   inflight-sign KEY.pem COUNT URL OUT
 *
 * Like cliqhost-bench-sign (bench/sign.c), each line is
 * "<base64 signature>\t<JSON body>": a realistic call of the slash command
 * /wait, signed with RSA PKCS#1 v1.5 over SHA-256 as Cliq signs. Its
 * arguments are the URL the handler (bench/scripts-inflight/commands/wait.lua)
 * calls, with "?i=<n>" or "&i=<n>" appended so every body differs.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The URL goes into a JSON string unescaped, so it must not need escaping. */
static int url_is_plain(const char *url)
{
    if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
        return 0;
    if (strlen(url) > 1024)
        return 0;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\')
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    /* Stamped now, as Cliq does: the host refuses timestamps out of its window. */
    struct timespec now_ts;
    clock_gettime(CLOCK_REALTIME, &now_ts);
    long long now_ms = (long long)now_ts.tv_sec * 1000 + now_ts.tv_nsec / 1000000;

    if (argc != 5) {
        fprintf(stderr, "usage: %s KEY.pem COUNT URL OUT\n", argv[0]);
        return 2;
    }
    const char *url = argv[3];
    if (!url_is_plain(url)) {
        fprintf(stderr, "URL must be http(s)://, printable ASCII, no quotes or backslashes\n");
        return 2;
    }
    char *end;
    long count = strtol(argv[2], &end, 10);
    if (*end || count <= 0) {
        fprintf(stderr, "bad COUNT %s\n", argv[2]);
        return 2;
    }
    FILE *kf = fopen(argv[1], "r");
    EVP_PKEY *key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
    if (kf)
        fclose(kf);
    if (!key) {
        fprintf(stderr, "cannot read a private key from %s\n", argv[1]);
        return 1;
    }
    FILE *out = fopen(argv[4], "w");
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (!out || !md) {
        fprintf(stderr, "cannot write %s\n", argv[4]);
        return 1;
    }
    const char sep = strchr(url, '?') ? '&' : '?';
    static char body[8192];
    unsigned char sig[1024];
    char b64[2048];
    for (long i = 0; i < count; i++) {
        long user = 100000000 + i * 7919 % 899999999;
        int n = snprintf(
            body, sizeof body,
            "{\"name\":\"wait\",\"handler\":{\"type\":\"execution_handler\"},"
            "\"response_url\":\"https://cliq.zoho.com/v2/extensions/2980/responses/"
            "17202823900615%06ld\",\"type\":\"command\",\"timestamp\":%lld,"
            "\"params\":{\"environment\":{\"tld\":\".com\",\"data_center\":\"US\","
            "\"base_url\":\"https://cliq.zoho.com/company/123456456\"},"
            "\"access\":{\"user_id\":\"%ld\",\"zoho_user_id\":\"%ld\",\"organization\":"
            "{\"type\":\"company\",\"id\":\"123456456\"},\"user_agent\":\"Mozilla/5.0 (X11; "
            "Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36\","
            "\"chat_id\":\"CT_2243226337559778047_%ld-B2\"},"
            "\"user\":{\"id\":\"%ld\",\"first_name\":\"User\",\"last_name\":\"N%ld\","
            "\"email\":\"user%ld@zylcal.com\",\"admin\":false,\"organization_id\":\"123456456\","
            "\"timezone\":\"Asia/Kolkata\",\"country\":\"in\",\"language\":\"en\","
            "\"zoho_user_id\":\"%ld\"},"
            "\"chat\":{\"owner\":\"%ld\",\"id\":\"CT_2243226337559778047_%ld-B2\","
            "\"type\":\"chat\",\"title\":\"Deploys\",\"members\":[{\"id\":\"%ld\","
            "\"first_name\":\"User\",\"last_name\":\"N%ld\",\"email\":\"user%ld@zylcal.com\","
            "\"status\":\"0\"}],\"recent_messages\":[]},"
            "\"location\":{\"latitude\":12.8282472,\"longitude\":80.0511901,\"accuracy\":30,"
            "\"status\":\"granted\"},"
            "\"mentions\":[],\"options\":{},\"selections\":[],\"attachments\":[],"
            "\"arguments\":\"%s%ci=%ld\"}}",
            i % 1000000, now_ms + i, user, user, user, user, i, i, user, user, user, user, i, i,
            url, sep, i);
        if (n < 0 || (size_t)n >= sizeof body) {
            fprintf(stderr, "body too long\n");
            return 1;
        }
        size_t siglen = sizeof sig;
        if (!EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) ||
            !EVP_DigestSign(md, sig, &siglen, (unsigned char *)body, (size_t)n)) {
            fprintf(stderr, "signing failed\n");
            return 1;
        }
        EVP_EncodeBlock((unsigned char *)b64, sig, (int)siglen);
        fprintf(out, "%s\t%s\n", b64, body);
    }
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    return fclose(out) == 0 ? 0 : 1;
}
