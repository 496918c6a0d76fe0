/* Unit tests for ssrf (the address classes, the allow-list and the message
 * a script sees) and for fetch's guard, which applies them to every
 * connection a script's request opens or reuses, against a small
 * keep-alive HTTP server on loopback. */
#include "check.h"
#include "core/ssrf.h"
#include "event/fetch.h"
#include "event/sched.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- classes ----------------------------------------------------------- */

enum {
    P = SSRF_PUBLIC,
    L = SSRF_LOOPBACK,
    U = SSRF_UNSPECIFIED,
    V = SSRF_PRIVATE,
    K = SSRF_LINK_LOCAL,
    N = SSRF_SHARED,
    M = SSRF_MULTICAST,
    B = SSRF_BROADCAST,
    R = SSRF_RESERVED
};

struct want {
    const char *ip;
    int cls;
};

/* Every block, with the addresses on both sides of its edges. */
static const struct want v4[] = {
    {"0.0.0.0", U},         {"0.255.255.255", U},   {"1.0.0.0", P},         {"8.8.8.8", P},
    {"9.255.255.255", P},   {"10.0.0.0", V},        {"10.255.255.255", V},  {"11.0.0.0", P},
    {"100.63.255.255", P},  {"100.64.0.0", N},      {"100.127.255.255", N}, {"100.128.0.0", P},
    {"126.255.255.255", P}, {"127.0.0.0", L},       {"127.0.0.1", L},       {"127.255.255.255", L},
    {"128.0.0.0", P},       {"169.253.255.255", P}, {"169.254.0.0", K},     {"169.254.169.254", K},
    {"169.254.255.255", K}, {"169.255.0.0", P},     {"172.15.255.255", P},  {"172.16.0.0", V},
    {"172.31.255.255", V},  {"172.32.0.0", P},      {"191.255.255.255", P}, {"192.0.0.0", R},
    {"192.0.0.255", R},     {"192.0.1.0", P},       {"192.0.2.0", R},       {"192.0.2.255", R},
    {"192.0.3.0", P},       {"192.88.98.255", P},   {"192.88.99.0", R},     {"192.88.99.255", R},
    {"192.88.100.0", P},    {"192.167.255.255", P}, {"192.168.0.0", V},     {"192.168.255.255", V},
    {"192.169.0.0", P},     {"198.17.255.255", P},  {"198.18.0.0", R},      {"198.19.255.255", R},
    {"198.20.0.0", P},      {"198.51.99.255", P},   {"198.51.100.0", R},    {"198.51.100.255", R},
    {"198.51.101.0", P},    {"203.0.112.255", P},   {"203.0.113.0", R},     {"203.0.113.255", R},
    {"203.0.114.0", P},     {"223.255.255.255", P}, {"224.0.0.0", M},       {"239.255.255.255", M},
    {"240.0.0.0", R},       {"255.255.255.254", R}, {"255.255.255.255", B},
};

static const struct want v6[] = {
    {"::", U},
    {"::1", L},
    {"::ffff:127.0.0.1", L}, /* IPv4-mapped: the IPv4 address's class */
    {"::ffff:10.1.2.3", V},
    {"::ffff:169.254.169.254", K},
    {"::ffff:100.64.0.1", N},
    {"::ffff:0.0.0.0", U},
    {"::ffff:255.255.255.255", B},
    {"::ffff:8.8.8.8", P},
    {"::127.0.0.1", L}, /* IPv4-compatible: refused, named after the IPv4 address */
    {"::10.0.0.1", V},
    {"::8.8.8.8", R},
    {"::2", U},
    {"64:ff9b::127.0.0.1", L}, /* NAT64: the IPv4 address's class */
    {"64:ff9b::10.0.0.1", V},
    {"64:ff9b::169.254.169.254", K},
    {"64:ff9b::8.8.8.8", P},
    {"64:ff9b:1::1", V}, /* local-use NAT64 */
    {"64:ff9b:1:ffff::", V},
    {"2002:7f00:1::", L}, /* 6to4: the IPv4 address's class */
    {"2002:a9fe:a9fe::1", K},
    {"2002:c0a8:101::", V},
    {"2002:808:808::1", P},
    {"100::1", R}, /* discard-only */
    {"1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", R},
    {"2000::", P},
    {"2001::1", R}, /* Teredo, in the IETF protocol block 2001::/23 */
    {"2001:1ff:ffff:ffff::", R},
    {"2001:200::", P},
    {"2001:db7:ffff:ffff::", P},
    {"2001:db8::", R},
    {"2001:db8:ffff:ffff::", R},
    {"2001:db9::", P},
    {"2606:4700:4700::1111", P},
    {"2a00:1450:4001::1", P},
    {"3ffe:ffff::", P},
    {"3fff::1", R}, /* documentation, 3fff::/20 */
    {"3fff:fff:ffff::", R},
    {"3fff:1000::", P},
    {"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", P},
    {"4000::", R},
    {"5f00::1", R},
    {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", R},
    {"fc00::", V},
    {"fd00::2", V},
    {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", V},
    {"fe00::", R},
    {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", R},
    {"fe80::", K},
    {"fe80::1", K},
    {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", K},
    {"fec0::1", V},
    {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", V},
    {"ff00::", M},
    {"ff02::1", M},
};

static void test_every_block_and_its_edges(void)
{
    for (size_t i = 0; i < sizeof v4 / sizeof v4[0]; i++) {
        unsigned char a[4];
        CHECK(inet_pton(AF_INET, v4[i].ip, a) == 1);
        int got = (int)ssrf_classify_v4(a);
        if (got != v4[i].cls)
            fprintf(stderr, "  %s: got %s, want %s\n", v4[i].ip, ssrf_class_name(got),
                    ssrf_class_name(v4[i].cls));
        CHECK_INT(got, v4[i].cls);
    }
    for (size_t i = 0; i < sizeof v6 / sizeof v6[0]; i++) {
        unsigned char a[16];
        CHECK(inet_pton(AF_INET6, v6[i].ip, a) == 1);
        int got = (int)ssrf_classify_v6(a);
        if (got != v6[i].cls)
            fprintf(stderr, "  %s: got %s, want %s\n", v6[i].ip, ssrf_class_name(got),
                    ssrf_class_name(v6[i].cls));
        CHECK_INT(got, v6[i].cls);
    }
}

/* A sockaddr for an IPv4 or IPv6 text address. */
static struct sockaddr_storage addr(const char *ip)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *in = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, ip, &in->sin_addr) == 1)
        in->sin_family = AF_INET;
    else if (inet_pton(AF_INET6, ip, &in6->sin6_addr) == 1)
        in6->sin6_family = AF_INET6;
    return ss;
}

static void test_classify_a_sockaddr(void)
{
    struct sockaddr_storage a = addr("169.254.169.254");
    CHECK_INT(ssrf_classify((struct sockaddr *)&a), SSRF_LINK_LOCAL);
    a = addr("::ffff:192.168.1.1");
    CHECK_INT(ssrf_classify((struct sockaddr *)&a), SSRF_PRIVATE);
    a = addr("2a00:1450:4001::1");
    CHECK_INT(ssrf_classify((struct sockaddr *)&a), SSRF_PUBLIC);
    struct sockaddr un = {.sa_family = AF_UNIX};
    CHECK_INT(ssrf_classify(&un), SSRF_RESERVED);
}

/* ---- the allow-list ---------------------------------------------------- */

static struct ssrf_allow *allow_of(const char *e1, const char *e2, const char *e3)
{
    char *list[3] = {(char *)e1, (char *)e2, (char *)e3};
    size_t n = e3 ? 3 : e2 ? 2 : e1 ? 1 : 0;
    char err[256] = "";
    struct ssrf_allow *a = ssrf_allow_new("http_allow", list, n, err, sizeof err);
    if (!a)
        fprintf(stderr, "  unexpected: %s\n", err);
    return a;
}

/* The error for one entry, or "" when it parses. */
static const char *entry_error(const char *e)
{
    static char err[256];
    char *list[1] = {(char *)e};
    err[0] = '\0';
    struct ssrf_allow *a = ssrf_allow_new("http_allow", list, 1, err, sizeof err);
    ssrf_allow_free(a);
    return a ? "" : err;
}

static void test_allow_entries(void)
{
    static const char *const good[] = {
        "127.0.0.1",        "10.0.0.0/8",
        "0.0.0.0/0",        "::1",
        "fd00::/8",         "::/0",
        "172.16.0.0/12",    "::ffff:10.0.0.0/104",
        "jenkins.internal", "JENKINS.Internal.",
        "localhost",        "my_host-1.corp",
        "192.168.1.7/32",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK_STR(entry_error(good[i]), "");

    CHECK_STR(entry_error("10.0.0.0/33"),
              "http_allow entry '10.0.0.0/33': the prefix length must be a number from 0 to 32");
    CHECK_STR(entry_error("fd00::/129"),
              "http_allow entry 'fd00::/129': the prefix length must be a number from 0 to 128");
    CHECK_STR(entry_error("10.0.0.0/"),
              "http_allow entry '10.0.0.0/': the prefix length must be a number from 0 to 32");
    CHECK_STR(entry_error("10.0.0.0/-8"),
              "http_allow entry '10.0.0.0/-8': the prefix length must be a number from 0 to 32");
    CHECK_STR(entry_error("10.0.0.1/8"), "http_allow entry '10.0.0.1/8': has bits set past the "
                                         "/8 prefix (did you mean 10.0.0.0/8?)");
    CHECK_STR(entry_error("fd00::1/8"), "http_allow entry 'fd00::1/8': has bits set past the /8 "
                                        "prefix (did you mean fd00::/8?)");
    CHECK_STR(entry_error("10.0.0.300"),
              "http_allow entry '10.0.0.300': not an IP address, CIDR block or host name");
    CHECK_STR(entry_error("2130706433"),
              "http_allow entry '2130706433': write IPv4 addresses as four decimal numbers");
    CHECK_STR(entry_error("0x7f000001"),
              "http_allow entry '0x7f000001': write IPv4 addresses as four decimal numbers");
    CHECK_STR(entry_error("0x7f.1"),
              "http_allow entry '0x7f.1': write IPv4 addresses as four decimal numbers");
    CHECK_STR(entry_error("010.0.0.1"),
              "http_allow entry '010.0.0.1': write IPv4 addresses as four decimal numbers");
    CHECK_HAS(entry_error(""), "not an IP address, CIDR block or host name");
    CHECK_HAS(entry_error("10.0.0.1:8080"), "not an IP address, CIDR block or host name");
    CHECK_HAS(entry_error("fe80::1%eth0"), "not an IP address, CIDR block or host name");
    CHECK_HAS(entry_error("*.internal"), "not an IP address, CIDR block or host name");
    CHECK_HAS(entry_error("http://jenkins.internal"), "not an IP address");
    CHECK_HAS(entry_error("a..b"), "not an IP address");
    CHECK_HAS(entry_error("jenkins.internal/24"), "not an IP address");
}

/* ssrf_check's verdict: "" when allowed, else the message. */
static const char *verdict(const struct ssrf_allow *a, const char *ip, const char *host,
                           int redirected)
{
    static char why[300];
    struct sockaddr_storage ss = addr(ip);
    why[0] = '\0';
    if (ssrf_check(a, (struct sockaddr *)&ss, host, redirected, why, sizeof why) == 0)
        return "";
    return why;
}

static void test_messages(void)
{
    struct ssrf_allow *none = allow_of(NULL, NULL, NULL);
    CHECK_STR(verdict(none, "127.0.0.1", "127.0.0.1", 0),
              "refused: 127.0.0.1 is a loopback address (allow it with http_allow)");
    CHECK_STR(verdict(none, "169.254.169.254", "169.254.169.254", 0),
              "refused: 169.254.169.254 is a link-local address (allow it with http_allow)");
    CHECK_STR(verdict(none, "::1", "[::1]", 0),
              "refused: ::1 is a loopback address (allow it with http_allow)");
    CHECK_STR(verdict(none, "::ffff:127.0.0.1", "[::ffff:127.0.0.1]", 0),
              "refused: ::ffff:127.0.0.1 is a loopback address (allow it with http_allow)");
    CHECK_STR(verdict(none, "127.0.0.1", "localhost", 0),
              "refused: localhost resolves to 127.0.0.1, a loopback address (allow it with "
              "http_allow)");
    CHECK_STR(verdict(none, "10.1.2.3", "jenkins.internal", 1),
              "refused after a redirect: jenkins.internal resolves to 10.1.2.3, a private "
              "address (allow it with http_allow)");
    CHECK_STR(verdict(none, "127.0.0.1", "127.0.0.1", 1),
              "refused after a redirect: 127.0.0.1 is a loopback address (allow it with "
              "http_allow)");
    CHECK_STR(verdict(none, "0.0.0.0", NULL, 0),
              "refused: 0.0.0.0 is an unspecified address (allow it with http_allow)");
    CHECK_STR(verdict(none, "100.64.0.1", "100.64.0.1", 0),
              "refused: 100.64.0.1 is a carrier-grade NAT address (allow it with http_allow)");
    CHECK_STR(verdict(none, "8.8.8.8", "8.8.8.8", 0), "");
    CHECK_STR(verdict(none, "2a00:1450:4001::1", "example.com", 0), "");
    CHECK_STR(verdict(NULL, "10.0.0.1", NULL, 0),
              "refused: 10.0.0.1 is a private address (allow it with http_allow)");
    ssrf_allow_free(none);
}

static void test_allow_matching(void)
{
    struct ssrf_allow *a = allow_of("10.0.0.0/8", "127.0.0.1", "fd00::/8");
    CHECK_STR(verdict(a, "10.0.0.0", NULL, 0), "");
    CHECK_STR(verdict(a, "10.255.255.255", NULL, 0), "");
    CHECK_STR(verdict(a, "11.0.0.0", NULL, 0), ""); /* public anyway */
    CHECK_HAS(verdict(a, "172.16.0.1", NULL, 0), "a private address");
    CHECK_STR(verdict(a, "127.0.0.1", "localhost", 0), "");
    CHECK_HAS(verdict(a, "127.0.0.2", NULL, 0), "refused: 127.0.0.2 is a loopback address");
    CHECK_STR(verdict(a, "::ffff:127.0.0.1", NULL, 0), ""); /* mapped is matched as IPv4 */
    CHECK_STR(verdict(a, "::ffff:10.9.8.7", NULL, 0), "");
    CHECK_HAS(verdict(a, "::1", NULL, 0), "a loopback address");
    CHECK_HAS(verdict(a, "::127.0.0.1", NULL, 0), "a loopback address"); /* not mapped */
    CHECK_HAS(verdict(a, "64:ff9b::a00:1", NULL, 0), "a private address");
    CHECK_STR(verdict(a, "fd12::1", NULL, 0), "");
    CHECK_HAS(verdict(a, "fe80::1", NULL, 0), "a link-local address");
    ssrf_allow_free(a);

    /* A mapped entry is its IPv4 block; ::/0 holds no IPv4 address. */
    a = allow_of("::ffff:192.168.0.0/112", "::/0", NULL);
    CHECK_STR(verdict(a, "192.168.3.4", NULL, 0), "");
    CHECK_STR(verdict(a, "192.169.0.1", NULL, 0), ""); /* public */
    CHECK_HAS(verdict(a, "10.0.0.1", NULL, 0), "a private address");
    CHECK_STR(verdict(a, "::1", NULL, 0), "");
    CHECK_STR(verdict(a, "fe80::1", NULL, 0), "");
    ssrf_allow_free(a);

    /* A name allows what it resolves to, only when it is the URL's host. */
    a = allow_of("Jenkins.Internal.", "0.0.0.0/0", NULL);
    CHECK_STR(verdict(a, "10.0.0.1", NULL, 0), ""); /* 0.0.0.0/0: every IPv4 address */
    CHECK_HAS(verdict(a, "fd00::1", NULL, 0), "a private address");
    ssrf_allow_free(a);
    a = allow_of("jenkins.internal", NULL, NULL);
    CHECK_STR(verdict(a, "10.0.0.1", "jenkins.internal", 0), "");
    CHECK_STR(verdict(a, "fd00::1", "JENKINS.internal.", 1), "");
    CHECK_STR(verdict(a, "127.0.0.1", "jenkins.internal", 0), "");
    CHECK_HAS(verdict(a, "10.0.0.1", "other.internal", 0),
              "refused: other.internal resolves to 10.0.0.1, a private address");
    CHECK_HAS(verdict(a, "10.0.0.1", "10.0.0.1", 0), "refused: 10.0.0.1 is a private address");
    CHECK_HAS(verdict(a, "10.0.0.1", NULL, 0), "refused");
    CHECK_HAS(verdict(a, "10.0.0.1", "jenkins.internal.evil.example", 0), "refused");
    ssrf_allow_free(a);
}

/* ---- fetch's guard ----------------------------------------------------- */

/* A keep-alive HTTP server on one loopback address: answers "/" with 200
 * "ok" and "/r" with a redirect to `location`, counting connections and
 * requests. */
struct server {
    int fd;
    unsigned port;
    char location[128];
    atomic_int connections, requests, stop;
    pthread_t th;
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    struct pollfd p[9] = {{.fd = sv->fd, .events = POLLIN}};
    int n = 1;
    while (!atomic_load(&sv->stop)) {
        if (poll(p, (nfds_t)n, 20) <= 0)
            continue;
        if ((p[0].revents & POLLIN) && n < 9) {
            int c = accept(sv->fd, NULL, NULL);
            if (c >= 0) {
                atomic_fetch_add(&sv->connections, 1);
                p[n++] = (struct pollfd){.fd = c, .events = POLLIN};
            }
        }
        for (int i = 1; i < n; i++) {
            if (!p[i].revents)
                continue;
            char buf[4096];
            ssize_t got = read(p[i].fd, buf, sizeof buf - 1);
            if (got <= 0) {
                close(p[i].fd);
                p[i--] = p[--n];
                continue;
            }
            buf[got] = '\0';
            atomic_fetch_add(&sv->requests, 1);
            char reply[512];
            if (strncmp(buf, "GET /r ", 7) == 0)
                snprintf(reply, sizeof reply,
                         "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n",
                         sv->location);
            else
                snprintf(reply, sizeof reply, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            ssize_t w = write(p[i].fd, reply, strlen(reply));
            (void)w;
        }
    }
    for (int i = 1; i < n; i++)
        close(p[i].fd);
    return NULL;
}

/* Starts a server on `ip` (127.0.0.1, 127.0.0.2, ...). Returns 0 or -1. */
static int server_start(struct server *sv, const char *ip)
{
    memset(sv, 0, sizeof *sv);
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    inet_pton(AF_INET, ip, &a.sin_addr);
    if (bind(sv->fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(sv->fd, 8) < 0) {
        close(sv->fd);
        return -1;
    }
    socklen_t al = sizeof a;
    getsockname(sv->fd, (struct sockaddr *)&a, &al);
    sv->port = ntohs(a.sin_port);
    pthread_create(&sv->th, NULL, serve, sv);
    return 0;
}

static void server_stop(struct server *sv)
{
    atomic_store(&sv->stop, 1);
    pthread_join(sv->th, NULL);
    close(sv->fd);
}

static struct fetch_result got;
static char got_body[64];
static int done;

static void on_done(struct fetch_result *r, void *ud)
{
    (void)ud;
    got = *r;
    snprintf(got_body, sizeof got_body, "%s", r->body.data ? r->body.data : "");
    got.body.data = got.headers.data = NULL;
    done = 1;
}

/* Fetches url on f; guard as given, with the allow-list `allow` (NULL
 * terminated). Returns when done. */
static void fetch_on(struct sched *s, struct fetch *f, const char *url, int guard,
                     char *const *allow, long redirects)
{
    size_t n = 0;
    while (allow && allow[n])
        n++;
    struct fetch_request rq = {.url = url,
                               .timeout_ms = 3000,
                               .max_response = 1024,
                               .max_redirects = redirects,
                               .guard = guard,
                               .allow = allow,
                               .nallow = n};
    done = 0;
    memset(&got, 0, sizeof got);
    got_body[0] = '\0';
    fetch_start(f, &rq, on_done, NULL);
    long long t0 = sched_clock_ms();
    while (!done && sched_clock_ms() - t0 < 5000)
        sched_run_once(s, 50);
    CHECK(done);
}

static void test_guard_refuses_before_connecting(void)
{
    struct server sv;
    CHECK_INT(server_start(&sv, "127.0.0.1"), 0);
    struct sched *s = sched_new(NULL, NULL, NULL);
    struct fetch *f = fetch_new(s);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", sv.port);

    fetch_on(s, f, url, 1, NULL, 0);
    CHECK(!got.ok);
    CHECK_STR(got.error, "refused: 127.0.0.1 is a loopback address (allow it with http_allow)");
    /* Spellings curl reads as 127.0.0.1, and a name that resolves to it. */
    snprintf(url, sizeof url, "http://2130706433:%u/", sv.port);
    fetch_on(s, f, url, 1, NULL, 0);
    CHECK_STR(got.error, "refused: 127.0.0.1 is a loopback address (allow it with http_allow)");
    snprintf(url, sizeof url, "http://0x7f.1:%u/", sv.port);
    fetch_on(s, f, url, 1, NULL, 0);
    CHECK_STR(got.error, "refused: 127.0.0.1 is a loopback address (allow it with http_allow)");
    snprintf(url, sizeof url, "http://localhost:%u/", sv.port);
    fetch_on(s, f, url, 1, NULL, 0);
    CHECK_HAS(got.error, "refused: localhost resolves to ");
    CHECK_HAS(got.error, ", a loopback address (allow it with http_allow)");
    snprintf(url, sizeof url, "http://[::ffff:127.0.0.1]:%u/", sv.port);
    fetch_on(s, f, url, 1, NULL, 0);
    CHECK_STR(got.error,
              "refused: ::ffff:127.0.0.1 is a loopback address (allow it with http_allow)");
    CHECK_INT(atomic_load(&sv.connections), 0); /* not even a SYN reached it */

    /* The allow-list lets it through; an unguarded request never asks. */
    char *allow[] = {"127.0.0.1", NULL};
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", sv.port);
    fetch_on(s, f, url, 1, allow, 0);
    CHECK(got.ok);
    CHECK_INT(got.status, 200);
    CHECK_STR(got_body, "ok");
    char *others[] = {"10.0.0.0/8", "::1", "localhost", NULL};
    fetch_on(s, f, url, 1, others, 0);
    CHECK_HAS(got.error, "refused: 127.0.0.1 is a loopback address");
    fetch_on(s, f, url, 0, NULL, 0);
    CHECK(got.ok);
    /* A name on the list allows what it resolves to. */
    snprintf(url, sizeof url, "http://localhost:%u/", sv.port);
    fetch_on(s, f, url, 1, others, 0);
    CHECK(got.ok);

    fetch_free(f);
    sched_free(s);
    server_stop(&sv);
}

/* A connection in the pool that an unguarded request (a post to Cliq)
 * opened to an internal address is not handed to a guarded request. */
static void test_pooled_connection_is_judged_again(void)
{
    struct server sv;
    CHECK_INT(server_start(&sv, "127.0.0.1"), 0);
    struct sched *s = sched_new(NULL, NULL, NULL);
    struct fetch *f = fetch_new(s);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", sv.port);
    fetch_on(s, f, url, 0, NULL, 0);
    CHECK(got.ok);
    CHECK_INT(atomic_load(&sv.connections), 1);
    CHECK_INT(atomic_load(&sv.requests), 1);

    fetch_on(s, f, url, 1, NULL, 0);
    CHECK(!got.ok);
    CHECK_STR(got.error, "refused: 127.0.0.1 is a loopback address (allow it with http_allow)");
    CHECK_INT(atomic_load(&sv.requests), 1); /* nothing was sent on the pooled connection */

    char *allow[] = {"127.0.0.1", NULL};
    fetch_on(s, f, url, 1, allow, 0);
    CHECK(got.ok); /* on a new connection: curl closes one whose transfer was refused */
    CHECK_INT(atomic_load(&sv.requests), 2);
    /* A connection a guarded request opened under an allow-list is judged
     * again when the next request's list no longer names it (SIGHUP). */
    fetch_on(s, f, url, 1, NULL, 0);
    CHECK_HAS(got.error, "refused: 127.0.0.1 is a loopback address");
    CHECK_INT(atomic_load(&sv.requests), 2);

    fetch_free(f);
    sched_free(s);
    server_stop(&sv);
}

/* A redirect from an allowed address to one that is not is refused, and
 * the refused address never sees a connection. */
static void test_redirect_is_judged(void)
{
    struct server to, from;
    CHECK_INT(server_start(&to, "127.0.0.1"), 0);
    if (server_start(&from, "127.0.0.2") < 0) {
        fprintf(stderr, "  (no 127.0.0.2 here: redirect case skipped)\n");
        server_stop(&to);
        return;
    }
    snprintf(from.location, sizeof from.location, "http://127.0.0.1:%u/", to.port);
    struct sched *s = sched_new(NULL, NULL, NULL);
    struct fetch *f = fetch_new(s);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.2:%u/r", from.port);
    char *allow[] = {"127.0.0.2", NULL};
    fetch_on(s, f, url, 1, allow, 0);
    CHECK(got.ok);
    CHECK_INT(got.status, 302);
    fetch_on(s, f, url, 1, allow, 1);
    CHECK(!got.ok);
    CHECK_STR(got.error, "refused after a redirect: 127.0.0.1 is a loopback address (allow it "
                         "with http_allow)");
    CHECK_INT(atomic_load(&to.connections), 0);
    char *both[] = {"127.0.0.2", "127.0.0.1", NULL};
    fetch_on(s, f, url, 1, both, 1);
    CHECK(got.ok);
    CHECK_INT(got.status, 200);
    CHECK_INT(atomic_load(&to.requests), 1);
    fetch_free(f);
    sched_free(s);
    server_stop(&from);
    server_stop(&to);
}

/* A guarded request goes straight to its address, whatever the
 * environment's proxy settings say: the address judged is the one used. */
static void test_guarded_requests_use_no_proxy(void)
{
    struct server sv, proxy;
    CHECK_INT(server_start(&sv, "127.0.0.1"), 0);
    CHECK_INT(server_start(&proxy, "127.0.0.1"), 0);
    char purl[64];
    snprintf(purl, sizeof purl, "http://127.0.0.1:%u", proxy.port);
    setenv("http_proxy", purl, 1);
    setenv("HTTPS_PROXY", purl, 1);
    setenv("ALL_PROXY", purl, 1);
    unsetenv("no_proxy");
    unsetenv("NO_PROXY");
    struct sched *s = sched_new(NULL, NULL, NULL);
    struct fetch *f = fetch_new(s);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", sv.port);
    char *allow[] = {"127.0.0.1", NULL};
    fetch_on(s, f, url, 1, allow, 0);
    CHECK(got.ok);
    CHECK_INT(atomic_load(&sv.requests), 1);
    CHECK_INT(atomic_load(&proxy.requests), 0);
    /* An unguarded request still honours the environment (so the check
     * would fail above if the guard did not turn proxies off). */
    fetch_on(s, f, url, 0, NULL, 0);
    CHECK(got.ok);
    CHECK_INT(atomic_load(&proxy.requests), 1);
    unsetenv("http_proxy");
    unsetenv("HTTPS_PROXY");
    unsetenv("ALL_PROXY");
    fetch_free(f);
    sched_free(s);
    server_stop(&proxy);
    server_stop(&sv);
}

int main(void)
{
    fetch_global_init();
    RUN(test_every_block_and_its_edges);
    RUN(test_classify_a_sockaddr);
    RUN(test_allow_entries);
    RUN(test_messages);
    RUN(test_allow_matching);
    RUN(test_guard_refuses_before_connecting);
    RUN(test_pooled_connection_is_judged_again);
    RUN(test_redirect_is_judged);
    RUN(test_guarded_requests_use_no_proxy);
    fetch_global_cleanup();
    return CHECK_DONE();
}
