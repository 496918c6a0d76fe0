/*
 * ssrf: which addresses a script's outbound request may connect to.
 *
 * A script's http.request (and attachment:download, whose URL a script can
 * change) must not reach the host's own machine or network on the script's
 * say-so: loopback, private, link-local (the cloud metadata address
 * 169.254.169.254), carrier-grade NAT, multicast, broadcast and reserved
 * addresses are refused unless the operator's allow-list (`http_allow`)
 * names them. The decision is made on the address a connection is actually
 * opened to, after name resolution (fetch.c calls ssrf_check from curl's
 * socket callbacks), so names that resolve inward, DNS rebinding, odd
 * spellings of an address and redirects are all judged by where they lead.
 *
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is the IPv4 address a.b.c.d
 * everywhere here: classified and matched against the allow-list as such.
 * Other IPv6 forms that embed an IPv4 address (IPv4-compatible ::a.b.c.d,
 * NAT64 64:ff9b::/96, 6to4 2002::/16) are refused when the embedded
 * address would be, and otherwise judged as IPv6.
 */
#ifndef CLIQHOST_SSRF_H
#define CLIQHOST_SSRF_H

#include <stddef.h>

struct sockaddr;

enum ssrf_class {
    SSRF_PUBLIC = 0,
    SSRF_LOOPBACK,    /* 127/8, ::1 */
    SSRF_UNSPECIFIED, /* 0/8, :: */
    SSRF_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10, 64:ff9b:1::/48 */
    SSRF_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    SSRF_SHARED,      /* 100.64/10, carrier-grade NAT */
    SSRF_MULTICAST,   /* 224/4, ff00::/8 */
    SSRF_BROADCAST,   /* 255.255.255.255 */
    SSRF_RESERVED,    /* documentation, benchmarking, 240/4, IPv6 outside 2000::/3, ... */
};

/* The class of an IPv4 address (4 bytes, network order). */
enum ssrf_class ssrf_classify_v4(const unsigned char a[4]);
/* The class of an IPv6 address (16 bytes, network order). */
enum ssrf_class ssrf_classify_v6(const unsigned char a[16]);
/* The class of an AF_INET or AF_INET6 address; any other family is
 * SSRF_RESERVED. */
enum ssrf_class ssrf_classify(const struct sockaddr *sa);
/* "a loopback address", "a private address", ... (static). */
const char *ssrf_class_name(enum ssrf_class c);

/* A parsed allow-list: addresses, CIDR blocks and host names. */
struct ssrf_allow;

/* Parses `n` entries: an IPv4 or IPv6 address ("127.0.0.1", "::1"), a
 * CIDR block ("10.0.0.0/8", "fd00::/8"; no bits set past the prefix) or a
 * host name ("jenkins.internal": whatever that name resolves to may be
 * connected to when it is the URL's host). IPv4 addresses must be written
 * as four decimal numbers. `setting` (static: "http_allow",
 * "response_url_allow") is the list's name in messages. Returns the list
 * (caller frees with ssrf_allow_free), or NULL with a message naming the
 * bad entry in err. */
struct ssrf_allow *ssrf_allow_new(const char *setting, char *const *entries, size_t n, char *err,
                                  size_t errlen);
void ssrf_allow_free(struct ssrf_allow *a);

/* Whether `a` names the URL host `host` itself (as written, brackets and
 * all): an IP literal inside one of its addresses or blocks, or a name
 * equal to one of its names (any case, a trailing dot ignored). Nothing is
 * resolved. */
int ssrf_allow_names_host(const struct ssrf_allow *a, const char *host);

/* Decides whether a connection to `sa` may be made for a request whose
 * URL names `host` (the URL's host as written, brackets and all; NULL when
 * unknown). Public addresses are always allowed; others only when an
 * address or block of `a` holds them or `host` is one of its names.
 * `redirected` says the URL came from a redirect. Returns 0 when allowed,
 * or -1 with the message a script sees in `why`:
 * "refused: 127.0.0.1 is a loopback address (allow it with http_allow)",
 * naming the list's setting. */
int ssrf_check(const struct ssrf_allow *a, const struct sockaddr *sa, const char *host,
               int redirected, char *why, size_t whylen);

#endif
