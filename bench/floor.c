/*
 * floor: the least a server must do to answer a signed Cliq call, as a
 * measuring instrument for bench/run.sh (issue 17). No Lua, no JSON, no log.
 *
 *   cliqhost-bench-floor [--no-verify] PORT KEY.pub
 *
 * Two threads, each with its own SO_REUSEPORT listening socket on
 * 127.0.0.1:PORT (0 picks a free port) and its own epoll loop, like the
 * host's 2 workers. Each reads HTTP/1.1 requests on keep-alive connections
 * (request line, headers, a Content-Length body, in as many reads as they
 * come), checks X-Cliq-Signature as host/cliq/verify.c does (base64 of an
 * RSA PKCS#1 v1.5 signature over the SHA-256 of the raw body, the public key
 * parsed once, a verify context per thread set up once) and answers the
 * bench handler's reply, or 401 when the signature is missing or does not
 * match. --no-verify skips the check. Prints "floor listening on
 * 127.0.0.1:PORT" once both sockets listen; runs until killed.
 *
 * Built with FLOOR_LUA (cliqhost-bench-floor-lua SCRIPT LUALIB after the
 * same arguments), the reply is instead what a Lua handler returns, with
 * only the work floor-lua.c lists: the floor plus Lua's share of a call.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#ifdef FLOOR_LUA
#include "floor-lua.h"
#endif

#define THREADS 2
#ifdef FLOOR_LUA
_Static_assert(FLOOR_LUA_THREADS == THREADS, "one Lua state per thread");
#endif
/* Headers and body of one request must fit; a bigger one gets 413. */
#define CONN_BUF (64 * 1024)
/* The longest reply below, with its headers. */
#define REPLY_MAX 512

#ifndef FLOOR_LUA
/* bench/scripts/commands/bench.lua's reply to the bench's first call. */
static const char ok_body[] =
    "{\"output\":{\"text\":\"Deploying *api* to *dev* for User.\","
    "\"card\":{\"title\":\"Deploy started\",\"theme\":\"modern-inline\"}}}";
#endif
static const char bad_sig_body[] = "{\"error\":\"X-Cliq-Signature does not match the body\"}";

struct conn {
    int fd;
    size_t len;             /* bytes in buf */
    size_t out_len;         /* reply bytes in out */
    size_t out_sent;        /* of which written */
    int want_out;           /* waiting for room to write, not for input */
    int closing;            /* close once the reply in out is written */
    char buf[CONN_BUF + 1]; /* and a NUL after a body, for floor-lua */
    char out[REPLY_MAX];
};

struct worker {
    int index;
    int listen_fd;
    int epfd;
    EVP_MD_CTX *md;
    EVP_PKEY_CTX *pctx; /* NULL: --no-verify */
    time_t date_at;     /* the second `date` was formatted for */
    char date[40];      /* "Mon, 07 Dec 2026 01:56:47 GMT" */
};

static EVP_PKEY *public_key;
static EVP_MD *sha256;
static int key_size;

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* A listening socket on 127.0.0.1:port that shares the port with the other
 * thread's. */
static int listen_on(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
        die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 1024) < 0)
        die("bind/listen");
    return fd;
}

/* Returns 1 when the base64 signature `sig` (n bytes) is a valid signature
 * of body by the key, as verifier_check_digest does it. */
static int signature_ok(struct worker *w, const char *sig, size_t n, const char *body,
                        size_t body_len)
{
    unsigned char raw[1024];
    if (n == 0 || n % 4 || n / 4 * 3 > sizeof raw)
        return 0;
    int rawlen = EVP_DecodeBlock(raw, (const unsigned char *)sig, (int)n);
    if (rawlen < 0)
        return 0;
    rawlen -= (sig[n - 1] == '=') + (sig[n - 2] == '=');
    unsigned char dig[EVP_MAX_MD_SIZE];
    unsigned int diglen = 0;
    if (rawlen != key_size || !EVP_DigestInit_ex2(w->md, sha256, NULL) ||
        !EVP_DigestUpdate(w->md, body, body_len) || !EVP_DigestFinal_ex(w->md, dig, &diglen))
        return 0;
    return EVP_PKEY_verify(w->pctx, raw, (size_t)rawlen, dig, diglen) == 1;
}

/* Puts a reply with `status` and `body` into c->out. */
static void reply(struct worker *w, struct conn *c, const char *status, const char *body,
                  int keep_alive)
{
    time_t now = time(NULL);
    if (now != w->date_at) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        w->date_at = now;
    }
    int n =
        snprintf(c->out, sizeof c->out,
                 "HTTP/1.1 %s\r\nDate: %s\r\nContent-Type: application/json\r\n"
                 "Content-Length: %zu\r\n%s\r\n%s",
                 status, w->date, strlen(body), keep_alive ? "" : "Connection: close\r\n", body);
    if (n < 0 || (size_t)n >= sizeof c->out) {
        reply(w, c, "500 Internal Server Error", "{}", 0); /* fits */
        return;
    }
    c->out_len = (size_t)n;
    c->out_sent = 0;
    if (!keep_alive)
        c->closing = 1;
}

/* Parses one whole request at the start of c->buf and puts its reply in
 * c->out. Returns the request's length in bytes, 0 when more bytes are
 * needed, -1 when the reply (an error) must be followed by closing. */
static long handle(struct worker *w, struct conn *c)
{
    char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
    if (!end) {
        if (c->len < CONN_BUF)
            return 0;
        reply(w, c, "431 Request Header Fields Too Large", "{}", 0);
        return -1;
    }
    size_t head_len = (size_t)(end - c->buf) + 4;
    char *line_end = memchr(c->buf, '\r', head_len);
    char *sp1 = memchr(c->buf, ' ', (size_t)(line_end - c->buf));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    if (!sp2 || line_end - sp2 != 9 || memcmp(sp2 + 1, "HTTP/1.", 7)) {
        reply(w, c, "400 Bad Request", "{}", 0);
        return -1;
    }
    int keep_alive = sp2[8] == '1';
    size_t body_len = 0;
    const char *sig = NULL;
    size_t sig_len = 0;
    for (char *h = line_end + 2, *eol; h < end; h = eol + 2) {
        eol = memchr(h, '\r', (size_t)(end - h) + 2);
        char *colon = memchr(h, ':', (size_t)(eol - h));
        if (!colon) {
            reply(w, c, "400 Bad Request", "{}", 0);
            return -1;
        }
        char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t name_len = (size_t)(colon - h);
        if (name_len == 14 && !strncasecmp(h, "Content-Length", 14)) {
            body_len = 0;
            for (const char *d = v; d < ve; d++) {
                if (*d < '0' || *d > '9' || body_len > CONN_BUF) {
                    reply(w, c, "400 Bad Request", "{}", 0);
                    return -1;
                }
                body_len = body_len * 10 + (size_t)(*d - '0');
            }
        } else if (name_len == 16 && !strncasecmp(h, "X-Cliq-Signature", 16)) {
            sig = v;
            sig_len = (size_t)(ve - v);
        } else if (name_len == 10 && !strncasecmp(h, "Connection", 10)) {
            if (ve - v == 5 && !strncasecmp(v, "close", 5))
                keep_alive = 0;
            else if (ve - v == 10 && !strncasecmp(v, "keep-alive", 10))
                keep_alive = 1;
        } else if (name_len == 17 && !strncasecmp(h, "Transfer-Encoding", 17)) {
            reply(w, c, "501 Not Implemented", "{}", 0);
            return -1;
        }
    }
    if (head_len + body_len > CONN_BUF) {
        reply(w, c, "413 Content Too Large", "{}", 0);
        return -1;
    }
    if (c->len < head_len + body_len)
        return 0;
    if (!w->pctx || (sig && signature_ok(w, sig, sig_len, c->buf + head_len, body_len))) {
#ifdef FLOOR_LUA
        char out[REPLY_MAX - 128];
        /* request_decode wants a NUL after the body: the next request's
         * first byte, or one past the data, is kept aside meanwhile. */
        char *body_end = c->buf + head_len + body_len, kept = *body_end;
        *body_end = '\0';
        size_t n = floor_lua_answer(w->index, c->buf + head_len, body_len, out, sizeof out - 1);
        *body_end = kept;
        out[n] = 0;
        reply(w, c, n ? "200 OK" : "500 Internal Server Error", n ? out : "{}", keep_alive);
#else
        reply(w, c, "200 OK", ok_body, keep_alive);
#endif
    } else
        reply(w, c, "401 Unauthorized", bad_sig_body, keep_alive);
    return keep_alive ? (long)(head_len + body_len) : -1;
}

static void close_conn(struct conn *c)
{
    close(c->fd); /* also takes it out of the epoll set */
    free(c);
}

/* Waits on c for input (out = 0) or for room to write (out = 1). */
static void wait_for(struct worker *w, struct conn *c, int out)
{
    if (c->want_out == out)
        return;
    c->want_out = out;
    struct epoll_event ev = {.events = out ? EPOLLOUT : EPOLLIN, .data.ptr = c};
    epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Writes what is left of c's reply. Returns 1 when all of it is written, 0
 * when the socket is full, -1 on an error. */
static int flush(struct conn *c)
{
    while (c->out_sent < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_sent, c->out_len - c->out_sent);
        if (n < 0)
            return errno == EAGAIN ? 0 : -1;
        c->out_sent += (size_t)n;
    }
    return 1;
}

/* Answers every whole request in c->buf, then waits for more input, or for
 * room to write when the socket is full. Frees c when it is done with. */
static void serve(struct worker *w, struct conn *c)
{
    for (;;) {
        int f = flush(c);
        if (f < 0 || (f && c->closing)) {
            close_conn(c);
            return;
        }
        if (!f) {
            wait_for(w, c, 1);
            return;
        }
        long used = handle(w, c);
        if (used == 0) {
            wait_for(w, c, 0);
            return;
        }
        if (used < 0) {
            c->closing = 1;
        } else {
            c->len -= (size_t)used;
            memmove(c->buf, c->buf + used, c->len);
        }
    }
}

static void *run(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[64];
    for (;;) {
        int n = epoll_wait(w->epfd, evs, 64, -1);
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(w->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >=
                       0) {
                    int one = 1;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    c = calloc(1, sizeof *c);
                    if (!c)
                        die("calloc");
                    c->fd = fd;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(w->epfd, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            if (!c->want_out) {
                ssize_t r = read(c->fd, c->buf + c->len, CONN_BUF - c->len);
                if (r < 0 && errno == EAGAIN)
                    continue;
                if (r <= 0) {
                    close_conn(c);
                    continue;
                }
                c->len += (size_t)r;
            }
            serve(w, c);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int verify = 1;
    if (argc > 1 && !strcmp(argv[1], "--no-verify")) {
        verify = 0;
        argc--;
        argv++;
    }
#ifdef FLOOR_LUA
    if (argc != 5) {
        fprintf(stderr,
                "usage: cliqhost-bench-floor-lua [--no-verify] PORT KEY.pub SCRIPT LUALIB\n");
        return 2;
    }
    if (floor_lua_init(argv[3], argv[4]) < 0)
        return 1;
    argc -= 2;
#endif
    char *end;
    long port = argc == 3 ? strtol(argv[1], &end, 10) : -1;
    if (port < 0 || port > 65535 || *end) {
        fprintf(stderr, "usage: cliqhost-bench-floor [--no-verify] PORT KEY.pub\n");
        return 2;
    }
    FILE *kf = fopen(argv[2], "r");
    public_key = kf ? PEM_read_PUBKEY(kf, NULL, NULL, NULL) : NULL;
    if (kf)
        fclose(kf);
    sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!public_key || !sha256) {
        fprintf(stderr, "cannot read a public key from %s\n", argv[2]);
        return 1;
    }
    key_size = EVP_PKEY_get_size(public_key);

    static struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        struct worker *w = &workers[i];
        w->index = i;
        w->listen_fd = listen_on((int)port);
        if (port == 0) {
            struct sockaddr_in a;
            socklen_t alen = sizeof a;
            getsockname(w->listen_fd, (struct sockaddr *)&a, &alen);
            port = ntohs(a.sin_port);
        }
        w->epfd = epoll_create1(EPOLL_CLOEXEC);
        w->md = EVP_MD_CTX_new();
        if (w->epfd < 0 || !w->md)
            die("epoll/md");
        if (verify) {
            w->pctx = EVP_PKEY_CTX_new_from_pkey(NULL, public_key, NULL);
            if (!w->pctx || EVP_PKEY_verify_init(w->pctx) <= 0 ||
                EVP_PKEY_CTX_set_rsa_padding(w->pctx, RSA_PKCS1_PADDING) <= 0 ||
                EVP_PKEY_CTX_set_signature_md(w->pctx, sha256) <= 0) {
                fprintf(stderr, "cannot set up RSA verification\n");
                return 1;
            }
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, w->listen_fd, &ev) < 0)
            die("epoll_ctl");
    }
    printf("floor listening on 127.0.0.1:%ld (%d threads%s)\n", port, THREADS,
           verify ? "" : ", signatures not checked");
    fflush(stdout);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        if (pthread_create(&t[i], NULL, run, &workers[i]))
            die("pthread_create");
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    return 0;
}
