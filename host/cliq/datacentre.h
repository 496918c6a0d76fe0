/*
 * datacentre: which of Cliq's data centres a call came from, and so which
 * API host its webhook posts go to (cliq.zoho.com, .eu, .in, .com.au, .jp,
 * .ca, .com.cn, .sa).
 */
#ifndef CLIQHOST_DATACENTRE_H
#define CLIQHOST_DATACENTRE_H

#include <stddef.h>

struct cJSON;

/* Writes the API base for a call's parsed body to out ("https://cliq.zoho.eu",
 * no trailing slash): from params.environment.tld, else the host of
 * params.environment.base_url when it is one of Cliq's own; Cliq's US one
 * when it names none. Never fails; out is always terminated. */
void datacentre_api_base(const struct cJSON *json, char *out, size_t n);

/* Whether `host` (a URL's host, any case) is one of Cliq's API hosts
 * (cliq.zoho.com, cliq.zoho.eu, ...): exactly, not a subdomain. */
int datacentre_is_cliq_host(const char *host);

#endif
