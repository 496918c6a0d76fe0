/*
 * sign: writes a file of distinct signed Cliq calls for the load test.
 *
 *   cliqhost-bench-sign KEY.pem COUNT OUT [FIRST]
 *
 * Calls are numbered from FIRST (default 0), so signers started with
 * different FIRSTs write different calls (bench/store.sh runs two at once).
 * Each line is "<base64 signature>\t<JSON body>": a realistic slash-command
 * call (environment, access, user, chat, location, as Cliq sends them) with
 * its own arguments, user and timestamp, signed with RSA PKCS#1 v1.5 over
 * SHA-256 like Cliq does. bench/replay.lua turns the lines into requests.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const services[] = {"api", "web", "worker", "billing", "search", "auth"};
static const char *const envs[] = {"dev", "staging", "prod --force"};

int main(int argc, char **argv)
{
    /* Stamped now, as Cliq does: the host refuses timestamps out of its window. */
    struct timespec now_ts;
    clock_gettime(CLOCK_REALTIME, &now_ts);
    long long now_ms = (long long)now_ts.tv_sec * 1000 + now_ts.tv_nsec / 1000000;

    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s KEY.pem COUNT OUT [FIRST]\n", argv[0]);
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
    long count = strtol(argv[2], NULL, 10);
    long first = argc == 5 ? strtol(argv[4], NULL, 10) : 0;
    FILE *out = fopen(argv[3], "w");
    if (!out || count <= 0 || first < 0) {
        fprintf(stderr, "bad count, first or output file\n");
        return 1;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    static char body[8192];
    unsigned char sig[1024];
    char b64[2048];
    for (long i = first; i < first + count; i++) {
        long user = 100000000 + i * 7919 % 899999999;
        int n = snprintf(
            body, sizeof body,
            "{\"name\":\"bench\",\"handler\":{\"type\":\"execution_handler\"},"
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
            "\"arguments\":\"%s %s #%ld\"}}",
            i % 1000000, now_ms + (i - first), user, user, user, user, i, i, user, user, user, user,
            i, i, services[i % 6], envs[i % 3], i);
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
