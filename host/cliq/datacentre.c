/* datacentre: Cliq's data centres and their API hosts (see datacentre.h). */
#include "cliq/datacentre.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

/* Cliq's data centres, by the tld that params.environment names. */
static const char *const cliq_tlds[] = {".com", ".eu",     ".in", ".com.au", ".jp",
                                        ".ca",  ".com.cn", ".sa", NULL};

#define CLIQ_HOST "cliq.zoho" /* followed by a tld */

int datacentre_is_cliq_host(const char *host)
{
    size_t pl = strlen(CLIQ_HOST);
    if (strncasecmp(host, CLIQ_HOST, pl) != 0)
        return 0;
    for (const char *const *t = cliq_tlds; *t; t++)
        if (strcasecmp(host + pl, *t) == 0)
            return 1;
    return 0;
}

void datacentre_api_base(const cJSON *json, char *out, size_t n)
{
    snprintf(out, n, "https://" CLIQ_HOST ".com");
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(json, "params");
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(params, "environment");
    const cJSON *tld = cJSON_GetObjectItemCaseSensitive(env, "tld");
    const cJSON *base = cJSON_GetObjectItemCaseSensitive(env, "base_url");
    for (const char *const *t = cliq_tlds; *t; t++) {
        if (cJSON_IsString(tld) && strcmp(tld->valuestring, *t) == 0) {
            snprintf(out, n, "https://" CLIQ_HOST "%s", *t);
            return;
        }
    }
    if (cJSON_IsString(base)) {
        for (const char *const *t = cliq_tlds; *t; t++) {
            char host[64];
            snprintf(host, sizeof host, "https://" CLIQ_HOST "%s", *t);
            size_t hl = strlen(host);
            if (strncmp(base->valuestring, host, hl) == 0 &&
                (base->valuestring[hl] == '/' || base->valuestring[hl] == '\0')) {
                snprintf(out, n, "%s", host);
                return;
            }
        }
    }
}
