/* ssrf: which addresses a script's outbound request may connect to (see ssrf.h). */
#include "core/ssrf.h"

#include "core/mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ---- classes ----------------------------------------------------------- */

struct block {
    unsigned char net[16];
    int bits;
    enum ssrf_class cls;
};

/* The IPv4 blocks that are not the public internet (IANA's special-purpose
 * registry), most specific first where they overlap. */
static const struct block v4_blocks[] = {
    {{0, 0, 0, 0}, 8, SSRF_UNSPECIFIED},        /* "this network" */
    {{10, 0, 0, 0}, 8, SSRF_PRIVATE},           /* RFC 1918 */
    {{100, 64, 0, 0}, 10, SSRF_SHARED},         /* carrier-grade NAT, RFC 6598 */
    {{127, 0, 0, 0}, 8, SSRF_LOOPBACK},         /* */
    {{169, 254, 0, 0}, 16, SSRF_LINK_LOCAL},    /* cloud metadata lives here */
    {{172, 16, 0, 0}, 12, SSRF_PRIVATE},        /* RFC 1918 */
    {{192, 0, 0, 0}, 24, SSRF_RESERVED},        /* IETF protocol assignments */
    {{192, 0, 2, 0}, 24, SSRF_RESERVED},        /* documentation (TEST-NET-1) */
    {{192, 88, 99, 0}, 24, SSRF_RESERVED},      /* 6to4 relay anycast, deprecated */
    {{192, 168, 0, 0}, 16, SSRF_PRIVATE},       /* RFC 1918 */
    {{198, 18, 0, 0}, 15, SSRF_RESERVED},       /* benchmarking */
    {{198, 51, 100, 0}, 24, SSRF_RESERVED},     /* documentation (TEST-NET-2) */
    {{203, 0, 113, 0}, 24, SSRF_RESERVED},      /* documentation (TEST-NET-3) */
    {{224, 0, 0, 0}, 4, SSRF_MULTICAST},        /* */
    {{255, 255, 255, 255}, 32, SSRF_BROADCAST}, /* limited broadcast */
    {{240, 0, 0, 0}, 4, SSRF_RESERVED},         /* future use */
};

/* The IPv6 blocks inside 2000::/3 (global unicast) that are not public,
 * and the special blocks outside it that have a class of their own.
 * Everything else outside 2000::/3 is reserved (see classify_v6). */
static const struct block v6_blocks[] = {
    {{0x00, 0x64, 0xff, 0x9b, 0, 1}, 48, SSRF_PRIVATE}, /* local-use NAT64, RFC 8215 */
    {{0x20, 0x01}, 23, SSRF_RESERVED},                  /* IETF protocol assignments, Teredo */
    {{0x20, 0x01, 0x0d, 0xb8}, 32, SSRF_RESERVED},      /* documentation */
    {{0x3f, 0xff}, 20, SSRF_RESERVED},                  /* documentation, RFC 9637 */
    {{0xfc}, 7, SSRF_PRIVATE},                          /* unique local */
    {{0xfe, 0x80}, 10, SSRF_LINK_LOCAL},                /* */
    {{0xfe, 0xc0}, 10, SSRF_PRIVATE},                   /* site-local, deprecated */
    {{0xff}, 8, SSRF_MULTICAST},                        /* */
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Whether the first `bits` bits of a and net agree. */
static int in_prefix(const unsigned char *a, const unsigned char *net, int bits)
{
    int full = bits / 8, rest = bits % 8;
    if (memcmp(a, net, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (net[full] & mask);
}

enum ssrf_class ssrf_classify_v4(const unsigned char a[4])
{
    for (size_t i = 0; i < COUNT(v4_blocks); i++)
        if (in_prefix(a, v4_blocks[i].net, v4_blocks[i].bits))
            return v4_blocks[i].cls;
    return SSRF_PUBLIC;
}

static const unsigned char zeros[16];
static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
static const unsigned char nat64_prefix[12] = {0x00, 0x64, 0xff, 0x9b};

enum ssrf_class ssrf_classify_v6(const unsigned char a[16])
{
    if (memcmp(a, zeros, 16) == 0)
        return SSRF_UNSPECIFIED;
    if (memcmp(a, zeros, 15) == 0 && a[15] == 1)
        return SSRF_LOOPBACK;
    /* ::ffff:a.b.c.d is a.b.c.d: the kernel connects to the IPv4 address. */
    if (memcmp(a, mapped_prefix, 12) == 0)
        return ssrf_classify_v4(a + 12);
    /* IPv4-compatible ::a.b.c.d (deprecated, never routed): refused in any
     * case, named after the embedded address when that says more. */
    if (memcmp(a, zeros, 12) == 0) {
        enum ssrf_class c = ssrf_classify_v4(a + 12);
        return c == SSRF_PUBLIC ? SSRF_RESERVED : c;
    }
    /* NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the embedded IPv4
     * address through a gateway: judged by that address. */
    if (memcmp(a, nat64_prefix, 12) == 0)
        return ssrf_classify_v4(a + 12);
    if (a[0] == 0x20 && a[1] == 0x02)
        return ssrf_classify_v4(a + 2);
    for (size_t i = 0; i < COUNT(v6_blocks); i++)
        if (in_prefix(a, v6_blocks[i].net, v6_blocks[i].bits))
            return v6_blocks[i].cls;
    if ((a[0] & 0xe0) != 0x20)
        return SSRF_RESERVED; /* outside 2000::/3: nothing public is assigned there */
    return SSRF_PUBLIC;
}

enum ssrf_class ssrf_classify(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return ssrf_classify_v4((const unsigned char *)&in->sin_addr);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return ssrf_classify_v6(in6->sin6_addr.s6_addr);
    }
    return SSRF_RESERVED;
}

const char *ssrf_class_name(enum ssrf_class c)
{
    switch (c) {
    case SSRF_PUBLIC:
        return "a public address";
    case SSRF_LOOPBACK:
        return "a loopback address";
    case SSRF_UNSPECIFIED:
        return "an unspecified address";
    case SSRF_PRIVATE:
        return "a private address";
    case SSRF_LINK_LOCAL:
        return "a link-local address";
    case SSRF_SHARED:
        return "a carrier-grade NAT address";
    case SSRF_MULTICAST:
        return "a multicast address";
    case SSRF_BROADCAST:
        return "a broadcast address";
    case SSRF_RESERVED:
        return "a reserved address";
    }
    return "a reserved address";
}

/* ---- the allow-list ---------------------------------------------------- */

struct rule {
    int family; /* AF_INET, AF_INET6, or 0 for a host name */
    unsigned char net[16];
    int bits;
    char *name; /* lower case, without a trailing dot */
};

struct ssrf_allow {
    const char *setting; /* static */
    struct rule *rules;
    size_t n;
};

/* The address to judge and match: an IPv4-mapped IPv6 address becomes its
 * IPv4 address. Returns the family (0 for one that is not IP). */
static int plain_address(const struct sockaddr *sa, unsigned char ip[16])
{
    if (sa->sa_family == AF_INET) {
        memcpy(ip, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return AF_INET;
    }
    if (sa->sa_family == AF_INET6) {
        const unsigned char *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, mapped_prefix, 12) == 0) {
            memcpy(ip, a + 12, 4);
            return AF_INET;
        }
        memcpy(ip, a, 16);
        return AF_INET6;
    }
    return 0;
}

/* Whether s is a host name: letters, digits, '-' and '_' in dot-separated
 * labels of 1 to 63 characters, at most 253 in all (a trailing dot
 * allowed), the last label holding a letter so that no spelling of an IPv4
 * address passes for a name. */
static int is_host_name(const char *s)
{
    size_t len = strlen(s);
    if (len && s[len - 1] == '.')
        len--;
    if (len == 0 || len > 253)
        return 0;
    size_t label = 0;
    int letter = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0)
                return 0;
            label = 0;
            letter = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return 0;
        if (isalpha(c))
            letter = 1;
        if (++label > 63)
            return 0;
    }
    return label > 0 && letter;
}

/* Lower-cases s without its trailing dot into out. */
static void name_key(const char *s, char *out, size_t outlen)
{
    size_t n = 0;
    for (; s[n] && n + 1 < outlen; n++)
        out[n] = (char)tolower((unsigned char)s[n]);
    out[n] = '\0';
    if (n && out[n - 1] == '.')
        out[n - 1] = '\0';
}

/* Parses one entry into r. Returns 0, or -1 with the reason in why. */
static int parse_entry(const char *e, struct rule *r, char *why, size_t whylen)
{
    memset(r, 0, sizeof *r);
    const char *slash = strchr(e, '/');
    char addr[64];
    size_t alen = slash ? (size_t)(slash - e) : strlen(e);
    if (!slash && !strchr(e, ':') && is_host_name(e)) {
        struct in_addr ignored;
        if (inet_aton(e, &ignored)) {
            snprintf(why, whylen, "write IPv4 addresses as four decimal numbers");
            return -1;
        }
        char key[256];
        name_key(e, key, sizeof key);
        r->name = xstrdup(key);
        return 0;
    }
    if (alen == 0 || alen >= sizeof addr) {
        snprintf(why, whylen, "not an IP address, CIDR block or host name");
        return -1;
    }
    memcpy(addr, e, alen);
    addr[alen] = '\0';
    int max;
    if (inet_pton(AF_INET, addr, r->net) == 1) {
        r->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, addr, r->net) == 1) {
        r->family = AF_INET6;
        max = 128;
    } else {
        struct in_addr ignored;
        if (!strchr(addr, ':') && inet_aton(addr, &ignored))
            snprintf(why, whylen, "write IPv4 addresses as four decimal numbers");
        else
            snprintf(why, whylen, "not an IP address, CIDR block or host name");
        return -1;
    }
    r->bits = max;
    if (slash) {
        const char *p = slash + 1;
        size_t nd = strspn(p, "0123456789");
        if (nd == 0 || nd > 3 || p[nd] != '\0' || strtol(p, NULL, 10) > max) {
            snprintf(why, whylen, "the prefix length must be a number from 0 to %d", max);
            return -1;
        }
        r->bits = (int)strtol(p, NULL, 10);
    }
    /* ::ffff:a.b.c.d/N (N >= 96) is the IPv4 block a.b.c.d/(N - 96),
     * since mapped addresses are matched as IPv4. */
    if (r->family == AF_INET6 && r->bits >= 96 && memcmp(r->net, mapped_prefix, 12) == 0) {
        memmove(r->net, r->net + 12, 4);
        memset(r->net + 4, 0, 12);
        r->family = AF_INET;
        r->bits -= 96;
    }
    unsigned char masked[16] = {0};
    size_t size = r->family == AF_INET ? 4 : 16;
    for (int i = 0; i < r->bits; i++)
        masked[i / 8] |= (unsigned char)(r->net[i / 8] & (0x80 >> (i % 8)));
    if (memcmp(masked, r->net, size) != 0) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(r->family, masked, text, sizeof text);
        snprintf(why, whylen, "has bits set past the /%d prefix (did you mean %s/%d?)", r->bits,
                 text, r->bits);
        return -1;
    }
    return 0;
}

struct ssrf_allow *ssrf_allow_new(const char *setting, char *const *entries, size_t n, char *err,
                                  size_t errlen)
{
    struct ssrf_allow *a = xcalloc(1, sizeof *a);
    a->setting = setting;
    a->rules = xcalloc(n ? n : 1, sizeof *a->rules);
    for (size_t i = 0; i < n; i++) {
        char why[160];
        if (parse_entry(entries[i], &a->rules[i], why, sizeof why) < 0) {
            snprintf(err, errlen, "%s entry '%s': %s", setting, entries[i], why);
            ssrf_allow_free(a);
            return NULL;
        }
        a->n++;
    }
    return a;
}

void ssrf_allow_free(struct ssrf_allow *a)
{
    if (!a)
        return;
    for (size_t i = 0; i < a->n; i++)
        free(a->rules[i].name);
    free(a->rules);
    free(a);
}

/* ---- the decision ------------------------------------------------------ */

/* The URL's host without IPv6 brackets, in out. */
static void bare_host(const char *host, char *out, size_t outlen)
{
    size_t n = strlen(host);
    if (n >= 2 && host[0] == '[' && host[n - 1] == ']') {
        host++;
        n -= 2;
    }
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, host, n);
    out[n] = '\0';
}

static int is_ip_literal(const char *s)
{
    unsigned char ignored[16];
    return inet_pton(AF_INET, s, ignored) == 1 || inet_pton(AF_INET6, s, ignored) == 1;
}

static int allowed(const struct ssrf_allow *a, int family, const unsigned char *ip,
                   const char *host)
{
    if (!a)
        return 0;
    char key[256] = "";
    if (host)
        name_key(host, key, sizeof key);
    for (size_t i = 0; i < a->n; i++) {
        const struct rule *r = &a->rules[i];
        if (r->name ? (key[0] && strcmp(r->name, key) == 0)
                    : (r->family == family && in_prefix(ip, r->net, r->bits)))
            return 1;
    }
    return 0;
}

int ssrf_check(const struct ssrf_allow *a, const struct sockaddr *sa, const char *host,
               int redirected, char *why, size_t whylen)
{
    unsigned char ip[16];
    int family = plain_address(sa, ip);
    if (!family) {
        snprintf(why, whylen, "refused: not an IP address");
        return -1;
    }
    enum ssrf_class c = family == AF_INET ? ssrf_classify_v4(ip) : ssrf_classify_v6(ip);
    char bare[256] = "";
    if (host)
        bare_host(host, bare, sizeof bare);
    if (c == SSRF_PUBLIC || allowed(a, family, ip, bare))
        return 0;

    /* The address as connected to (a mapped one keeps its IPv6 form). */
    char text[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, text, sizeof text);
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, text, sizeof text);
    const char *lead = redirected ? "refused after a redirect" : "refused";
    const char *setting = a ? a->setting : "http_allow";
    if (bare[0] && !is_ip_literal(bare))
        snprintf(why, whylen, "%s: %s resolves to %s, %s (allow it with %s)", lead, bare, text,
                 ssrf_class_name(c), setting);
    else
        snprintf(why, whylen, "%s: %s is %s (allow it with %s)", lead, text, ssrf_class_name(c),
                 setting);
    return -1;
}

int ssrf_allow_names_host(const struct ssrf_allow *a, const char *host)
{
    char bare[256];
    bare_host(host, bare, sizeof bare);
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, bare, &v4->sin_addr) == 1) {
        ss.ss_family = AF_INET;
    } else if (inet_pton(AF_INET6, bare, &v6->sin6_addr) == 1) {
        ss.ss_family = AF_INET6;
    } else {
        /* A name: matched against the names only (no address is known). */
        return allowed(a, 0, NULL, bare);
    }
    unsigned char ip[16];
    int family = plain_address((struct sockaddr *)&ss, ip);
    return allowed(a, family, ip, NULL);
}
