/* Unit tests for respond_url_check: where a response_url or an attachment's
 * url may point (https to Cliq's hosts, or what response_url_allow names),
 * and the message when it may not. Nothing is resolved or sent. */
#include "check.h"

#include "cliq/datacentre.h"
#include "cliq/respond.h"
#include "core/ssrf.h"
#include "event/fetch.h"

#include <stdio.h>
#include <string.h>

/* "" when allowed under the entries (NULL-terminated), else the message. */
static const char *verdict(const char *url, const char *e1, const char *e2)
{
    static char why[512];
    char *allow[2] = {(char *)e1, (char *)e2};
    size_t n = e2 ? 2 : e1 ? 1 : 0;
    why[0] = '\0';
    return respond_url_check(url, allow, n, why, sizeof why) == 0 ? "" : why;
}

static const char *not_cliq(const char *host)
{
    static char m[300];
    snprintf(m, sizeof m,
             "refused: %s is not one of Cliq's hosts (allow it with response_url_allow)", host);
    return m;
}

static void test_cliq_hosts_by_https(void)
{
    CHECK_STR(verdict("https://cliq.zoho.com/v2/extensions/2980/responses/1720", NULL, NULL), "");
    const char *dcs[] = {"com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa"};
    for (size_t i = 0; i < sizeof dcs / sizeof dcs[0]; i++) {
        char url[128];
        snprintf(url, sizeof url, "https://cliq.zoho.%s/v2/extensions/1/responses/2", dcs[i]);
        CHECK_STR(verdict(url, NULL, NULL), "");
    }
    CHECK_STR(verdict("HTTPS://CLIQ.Zoho.EU/x", NULL, NULL), "");
    CHECK_STR(verdict("https://cliq.zoho.com:443/x", NULL, NULL), "");
    CHECK_STR(verdict("http://cliq.zoho.com/x", NULL, NULL),
              "refused: Cliq's hosts take https only, not http");
}

static void test_other_hosts_are_refused(void)
{
    CHECK_STR(verdict("http://127.0.0.1:8080/admin/reset", NULL, NULL), not_cliq("127.0.0.1"));
    CHECK_STR(verdict("https://cliq.zoho.com.evil.example/r", NULL, NULL),
              not_cliq("cliq.zoho.com.evil.example"));
    CHECK_STR(verdict("https://evil.cliq.zoho.com/r", NULL, NULL), not_cliq("evil.cliq.zoho.com"));
    CHECK_STR(verdict("https://cliq.zoho.com@127.0.0.1/r", NULL, NULL), not_cliq("127.0.0.1"));
    CHECK_STR(verdict("https://cliq.zoho.org/r", NULL, NULL), not_cliq("cliq.zoho.org"));
    CHECK_STR(verdict("https://zoho.com/r", NULL, NULL), not_cliq("zoho.com"));
    CHECK_STR(verdict("https://[::1]/r", NULL, NULL), not_cliq("[::1]"));
    CHECK_STR(verdict("cliq.zoho.com/r", NULL, NULL), "refused: not a URL");
    CHECK_STR(verdict("", NULL, NULL), "refused: not a URL");
}

static void test_other_schemes_are_refused_whatever_the_host(void)
{
    CHECK_STR(verdict("gopher://127.0.0.1:70/_x", "127.0.0.1", NULL),
              "refused: only http and https URLs are allowed, not gopher");
    CHECK_STR(verdict("file:///etc/passwd", "127.0.0.1", NULL),
              "refused: only http and https URLs are allowed, not file");
    CHECK_STR(verdict("ftp://cliq.zoho.com/x", NULL, NULL),
              "refused: only http and https URLs are allowed, not ftp");
    CHECK_STR(verdict("DICT://127.0.0.1:11211/", "127.0.0.1", NULL),
              "refused: only http and https URLs are allowed, not dict");
}

static void test_the_allow_list(void)
{
    /* http and https to what it names: an address, a block, a name. */
    CHECK_STR(verdict("http://127.0.0.1:8080/r/1", "127.0.0.1", NULL), "");
    CHECK_STR(verdict("https://127.0.0.1/r/1", "127.0.0.1", NULL), "");
    CHECK_STR(verdict("http://10.1.2.3/r", "10.0.0.0/8", NULL), "");
    CHECK_STR(verdict("http://[::1]:9/r", "127.0.0.1", "::1"), "");
    CHECK_STR(verdict("http://[::ffff:127.0.0.1]:9/r", "127.0.0.1", NULL), "");
    CHECK_STR(verdict("http://Sink.Internal./r", "sink.internal", NULL), "");
    CHECK_STR(verdict("http://cliq.zoho.com/r", "cliq.zoho.com", NULL), "");
    /* Only what it names itself: no resolving, no subdomains. */
    CHECK_STR(verdict("http://localhost:8080/r", "127.0.0.1", NULL), not_cliq("localhost"));
    CHECK_STR(verdict("http://127.0.0.2/r", "127.0.0.1", NULL), not_cliq("127.0.0.2"));
    CHECK_STR(verdict("http://a.sink.internal/r", "sink.internal", NULL),
              not_cliq("a.sink.internal"));
    CHECK_STR(verdict("http://11.0.0.1/r", "10.0.0.0/8", NULL), not_cliq("11.0.0.1"));
}

static void test_url_parts(void)
{
    char scheme[16], host[64];
    CHECK_INT(fetch_url_parts("HTTPS://User:pw@Cliq.Zoho.com:8443/x?y#z", scheme, sizeof scheme,
                              host, sizeof host),
              0);
    CHECK_STR(scheme, "https");
    CHECK_STR(host, "Cliq.Zoho.com");
    CHECK_INT(fetch_url_parts("file:///etc/passwd", scheme, sizeof scheme, host, sizeof host), 0);
    CHECK_STR(scheme, "file");
    CHECK_STR(host, "");
    CHECK_INT(fetch_url_parts("no scheme", scheme, sizeof scheme, host, sizeof host), -1);
    CHECK(datacentre_is_cliq_host("cliq.zoho.com.au"));
    CHECK(!datacentre_is_cliq_host("cliq.zoho."));
    CHECK(!datacentre_is_cliq_host("cliq.zoho"));
}

int main(void)
{
    fetch_global_init();
    RUN(test_cliq_hosts_by_https);
    RUN(test_other_hosts_are_refused);
    RUN(test_other_schemes_are_refused_whatever_the_host);
    RUN(test_the_allow_list);
    RUN(test_url_parts);
    fetch_global_cleanup();
    return CHECK_DONE();
}
