/*
 * inflight-load: the load generator of the in-flight benchmark
 * (bench/inflight.sh). Opens one connection per request, sends every request
 * at once (or at --rate per second), then waits for all the replies on one
 * epoll loop, so all N requests are in flight together.
 *
 *   inflight-load --connect ADDR:PORT --requests FILE [-n N] [--timeout S]
 *                 [--expect TEXT] [--rate R] [--path PATH]
 *
 * FILE has one request per line, "<base64 signature>\t<JSON body>" as
 * cliqhost-bench-sign and inflight-sign write them; each becomes a POST with
 * X-Cliq-Signature. Lines are reused from the top when N is larger.
 *
 * A reply counts as ok when it is complete, has status 200 and, with
 * --expect, contains TEXT in its body (the host answers 200 with an apology
 * when a handler fails, so the status alone proves little). Everything else is
 * an error, by kind: connect, reset (closed or reset before a full reply),
 * status, body, timeout.
 *
 * It prints one flat JSON object on stdout. Times are in seconds from the
 * first connect(): send_s is when the last request was fully written,
 * completion_s when the last reply arrived. Latency is per request, from its
 * connect() to the last byte of its reply, over the ok replies.
 * syn_retransmits counts connections whose handshake needed a retransmitted
 * SYN (a full listen queue costs such a connection a second or more).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REPLY_MAX (64 * 1024) /* a reply larger than this is an error */
#define EXAMPLES  3           /* error replies shown on stderr */

enum state { ST_IDLE, ST_CONNECTING, ST_SENDING, ST_WAITING, ST_DONE };
enum outcome { OK, E_CONNECT, E_RESET, E_STATUS, E_BODY, E_TIMEOUT, E_COUNT };
static const char *const outcome_names[] = {"ok", "connect", "reset", "status", "body", "timeout"};

struct req {
    int fd;
    enum state state;
    enum outcome outcome;
    const char *out; /* the request bytes, borrowed from the request table */
    size_t out_len, out_off;
    char *in; /* the reply so far; freed when the request is done */
    size_t in_len, in_cap;
    int64_t t_start, t_sent, t_done;
    int status;
};

static struct req *reqs;
static int epfd;
static long n_reqs;
static const char *expect;
static long counts[E_COUNT];
static long done, in_flight, max_in_flight, syn_retransmits, examples;
static int64_t t0, t_last_sent, t_last_done;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

/* Ends request r with outcome o: closes its socket, frees its reply. */
static void finish(struct req *r, enum outcome o)
{
    if (r->state == ST_DONE)
        return;
    if (r->state == ST_WAITING)
        in_flight--;
    r->state = ST_DONE;
    r->outcome = o;
    r->t_done = now_ns();
    t_last_done = r->t_done;
    counts[o]++;
    done++;
    if (o != OK && examples < EXAMPLES) {
        examples++;
        fprintf(stderr, "inflight-load: request %ld: %s", (long)(r - reqs), outcome_names[o]);
        if (r->status)
            fprintf(stderr, " (HTTP %d)", r->status);
        /* The body, or what came, on one line. */
        const char *from = r->in_len ? memmem(r->in, r->in_len, "\r\n\r\n", 4) : NULL;
        from = from ? from + 4 : r->in;
        size_t left = r->in_len - (size_t)(from - r->in);
        if (left)
            fputs(": ", stderr);
        for (size_t i = 0; i < left && i < 300; i++)
            fputc((unsigned char)from[i] < ' ' ? ' ' : from[i], stderr);
        fputc('\n', stderr);
    }
    if (r->fd >= 0) {
        close(r->fd); /* also removes it from epoll */
        r->fd = -1;
    }
    free(r->in);
    r->in = NULL;
}

/* Finds a header in a reply head (case-insensitive). Returns a pointer to
 * its value inside head, or NULL. */
static const char *header_value(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *p = memchr(head, '\n', len);
    while (p && (size_t)(p + 1 - head) < len) {
        const char *line = p + 1;
        size_t left = len - (size_t)(line - head);
        if (left > nl && strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            return v;
        }
        p = memchr(line, '\n', left);
    }
    return NULL;
}

/* Decodes a chunked body in place. Returns its length, -1 when more bytes
 * are needed, -2 when it is malformed. */
static long dechunk(char *b, size_t len)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *eol = memmem(b + in, len - in, "\r\n", 2);
        if (!eol)
            return -1;
        char *e;
        unsigned long size = strtoul(b + in, &e, 16);
        if (e == b + in)
            return -2;
        size_t data = (size_t)(eol + 2 - b);
        if (size == 0) /* no trailers expected: the last chunk ends with CRLF CRLF */
            return data + 2 <= len ? (long)out : -1;
        if (data + size + 2 > len)
            return -1;
        memmove(b + out, b + data, size);
        out += size;
        in = data + size + 2;
    }
}

/* Looks at the reply so far; finishes r once it is complete. eof: the peer
 * closed the connection. */
static void check_reply(struct req *r, int eof)
{
    char *end = r->in_len ? memmem(r->in, r->in_len, "\r\n\r\n", 4) : NULL;
    if (!end) {
        if (eof)
            finish(r, E_RESET);
        return;
    }
    size_t head = (size_t)(end + 4 - r->in);
    if (r->in_len < 12 || memcmp(r->in, "HTTP/1.", 7) != 0) {
        finish(r, E_STATUS);
        return;
    }
    r->status = (int)strtol(r->in + 9, NULL, 10);
    char *body = r->in + head;
    size_t have = r->in_len - head;
    long body_len;
    const char *te = header_value(r->in, head, "transfer-encoding");
    const char *cl = header_value(r->in, head, "content-length");
    if (te && strncasecmp(te, "chunked", 7) == 0) {
        char *copy = xmalloc(have + 1);
        memcpy(copy, body, have);
        body_len = dechunk(copy, have);
        if (body_len >= 0) {
            memcpy(body, copy, (size_t)body_len);
            r->in_len = head + (size_t)body_len;
        }
        free(copy);
        if (body_len == -2) {
            finish(r, E_RESET);
            return;
        }
    } else if (cl) {
        long want = strtol(cl, NULL, 10);
        body_len = (long)have >= want ? want : -1;
    } else {
        body_len = eof ? (long)have : -1; /* the body ends at EOF */
    }
    if (body_len < 0) {
        if (eof)
            finish(r, E_RESET);
        return;
    }
    if (r->status != 200) {
        finish(r, E_STATUS);
        return;
    }
    if (expect) {
        size_t el = strlen(expect);
        if (!memmem(body, (size_t)body_len, expect, el)) {
            finish(r, E_BODY);
            return;
        }
    }
    finish(r, OK);
}

static void on_writable(struct req *r)
{
    if (r->state == ST_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(r->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            finish(r, E_CONNECT);
            return;
        }
        struct tcp_info ti;
        len = sizeof ti;
        if (getsockopt(r->fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 && ti.tcpi_total_retrans)
            syn_retransmits++;
        r->state = ST_SENDING;
    }
    if (r->state != ST_SENDING)
        return;
    while (r->out_off < r->out_len) {
        ssize_t n = write(r->fd, r->out + r->out_off, r->out_len - r->out_off);
        if (n > 0) {
            r->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        } else {
            finish(r, E_RESET);
            return;
        }
    }
    r->state = ST_WAITING;
    r->t_sent = t_last_sent = now_ns();
    if (++in_flight > max_in_flight)
        max_in_flight = in_flight;
}

static void on_readable(struct req *r)
{
    for (;;) {
        if (r->in_len == r->in_cap) {
            if (r->in_cap >= REPLY_MAX) {
                finish(r, E_STATUS);
                return;
            }
            size_t cap = r->in_cap ? r->in_cap * 2 : 1024;
            char *p = realloc(r->in, cap);
            if (!p) {
                fprintf(stderr, "out of memory\n");
                exit(1);
            }
            r->in = p;
            r->in_cap = cap;
        }
        ssize_t n = read(r->fd, r->in + r->in_len, r->in_cap - r->in_len);
        if (n > 0) {
            r->in_len += (size_t)n;
        } else if (n == 0) {
            check_reply(r, 1);
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            check_reply(r, 0);
            return;
        } else {
            finish(r, r->state == ST_CONNECTING ? E_CONNECT : E_RESET);
            return;
        }
    }
}

static void start(struct req *r, const struct sockaddr_in *sa)
{
    r->t_start = now_ns();
    r->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->fd < 0) {
        fprintf(stderr, "inflight-load: socket: %s\n", strerror(errno));
        r->state = ST_CONNECTING;
        finish(r, E_CONNECT);
        return;
    }
    int one = 1;
    setsockopt(r->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    r->state = ST_CONNECTING;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = r};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, r->fd, &ev) < 0 ||
        (connect(r->fd, (const struct sockaddr *)sa, sizeof *sa) < 0 && errno != EINPROGRESS)) {
        finish(r, E_CONNECT);
        return;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

/* Reads the request file and formats every request. Returns the number of
 * distinct requests; *table receives them (caller frees). */
static long load_requests(const char *path, const char *hostport, const char *url_path, long want,
                          char ***table, size_t **lens)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
        exit(1);
    }
    long n = 0, cap = 1024;
    char **t = xmalloc((size_t)cap * sizeof *t);
    size_t *l = xmalloc((size_t)cap * sizeof *l);
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    while (n < want && (got = getline(&line, &line_cap, f)) > 0) {
        while (got && (line[got - 1] == '\n' || line[got - 1] == '\r'))
            line[--got] = '\0';
        if (!got)
            continue;
        char *tab = strchr(line, '\t');
        const char *sig = "", *body = line;
        if (tab) {
            *tab = '\0';
            sig = line;
            body = tab + 1;
        }
        size_t blen = strlen(body);
        size_t size = blen + strlen(sig) + strlen(hostport) + strlen(url_path) + 256;
        char *req = xmalloc(size);
        int len = snprintf(req, size,
                           "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                           "%s%s%sContent-Length: %zu\r\n\r\n%s",
                           url_path, hostport, *sig ? "X-Cliq-Signature: " : "", sig,
                           *sig ? "\r\n" : "", blen, body);
        if (n == cap) {
            cap *= 2;
            t = realloc(t, (size_t)cap * sizeof *t);
            l = realloc(l, (size_t)cap * sizeof *l);
            if (!t || !l) {
                fprintf(stderr, "out of memory\n");
                exit(1);
            }
        }
        t[n] = req;
        l[n] = (size_t)len;
        n++;
    }
    free(line);
    fclose(f);
    if (!n) {
        fprintf(stderr, "no requests in %s\n", path);
        exit(1);
    }
    *table = t;
    *lens = l;
    return n;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s --connect ADDR:PORT --requests FILE [-n N] [--timeout S]\n"
            "          [--expect TEXT] [--rate R] [--path PATH]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *connect_to = NULL, *file = NULL, *url_path = "/";
    long n = 10000;
    double timeout_s = 30, rate = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage(argv[0]);
        char *e = NULL;
        if (strcmp(a, "--connect") == 0) {
            connect_to = argv[++i];
        } else if (strcmp(a, "--requests") == 0) {
            file = argv[++i];
        } else if (strcmp(a, "-n") == 0) {
            n = strtol(argv[++i], &e, 10);
        } else if (strcmp(a, "--timeout") == 0) {
            timeout_s = strtod(argv[++i], &e);
        } else if (strcmp(a, "--rate") == 0) {
            rate = strtod(argv[++i], &e);
        } else if (strcmp(a, "--expect") == 0) {
            expect = argv[++i];
        } else if (strcmp(a, "--path") == 0) {
            url_path = argv[++i];
        } else {
            usage(argv[0]);
        }
        if (e && *e)
            usage(argv[0]);
    }
    if (!connect_to || !file || n <= 0 || timeout_s <= 0 || rate < 0)
        usage(argv[0]);

    struct sockaddr_in sa = {.sin_family = AF_INET};
    char host[64];
    const char *colon = strrchr(connect_to, ':');
    char *pe;
    long port = colon ? strtol(colon + 1, &pe, 10) : -1;
    if (!colon || (size_t)(colon - connect_to) >= sizeof host || *pe || port <= 0 || port > 65535) {
        fprintf(stderr, "bad --connect %s (want IPv4ADDR:PORT)\n", connect_to);
        return 2;
    }
    memcpy(host, connect_to, (size_t)(colon - connect_to));
    host[colon - connect_to] = '\0';
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bad address in --connect %s\n", connect_to);
        return 2;
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < (rlim_t)n + 16)
            fprintf(stderr, "inflight-load: warning: %ld requests but only %lu descriptors\n", n,
                    (unsigned long)rl.rlim_cur);
    }
    signal(SIGPIPE, SIG_IGN);

    char **table;
    size_t *lens;
    long distinct = load_requests(file, connect_to, url_path, n, &table, &lens);
    reqs = calloc((size_t)n, sizeof *reqs);
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!reqs || epfd < 0) {
        fprintf(stderr, "cannot set up: %s\n", strerror(errno));
        return 1;
    }
    for (long i = 0; i < n; i++) {
        reqs[i].fd = -1;
        reqs[i].out = table[i % distinct];
        reqs[i].out_len = lens[i % distinct];
    }
    n_reqs = n;

    static struct epoll_event events[1024];
    long started = 0;
    t0 = now_ns();
    int64_t deadline = t0 + (int64_t)(timeout_s * 1e9);
    while (done < n_reqs) {
        int64_t now = now_ns();
        /* Start what is due: everything at once, or on the --rate schedule. */
        while (started < n_reqs &&
               (rate == 0 || (double)(now - t0) >= (double)started / rate * 1e9)) {
            start(&reqs[started++], &sa);
            if (rate == 0 && started % 256 == 0)
                break; /* let replies and handshakes be handled meanwhile */
        }
        int timeout = 100;
        if (started < n_reqs)
            timeout = rate == 0 ? 0 : 1;
        int got = epoll_wait(epfd, events, 1024, timeout);
        if (got < 0 && errno != EINTR) {
            fprintf(stderr, "epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < got; i++) {
            struct req *r = events[i].data.ptr;
            if (r->state == ST_DONE)
                continue;
            uint32_t ev = events[i].events;
            if (ev & EPOLLOUT || (ev & EPOLLERR && r->state == ST_CONNECTING))
                on_writable(r);
            if (r->state != ST_DONE && ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                on_readable(r);
        }
        if (now_ns() > deadline) {
            for (long i = 0; i < n_reqs; i++)
                if (reqs[i].state != ST_DONE)
                    finish(&reqs[i], E_TIMEOUT);
        }
    }

    int64_t *lat = xmalloc((size_t)n * sizeof *lat);
    long nlat = 0;
    for (long i = 0; i < n; i++)
        if (reqs[i].outcome == OK)
            lat[nlat++] = reqs[i].t_done - reqs[i].t_start;
    qsort(lat, (size_t)nlat, sizeof *lat, cmp_i64);
    double p50 = nlat ? (double)lat[(nlat - 1) * 50 / 100] / 1e6 : 0;
    double p99 = nlat ? (double)lat[(nlat - 1) * 99 / 100] / 1e6 : 0;
    double pmax = nlat ? (double)lat[nlat - 1] / 1e6 : 0;
    long errors = n - counts[OK];
    printf("{\"n\":%ld,\"ok\":%ld,\"errors\":%ld,\"errors_connect\":%ld,\"errors_reset\":%ld,"
           "\"errors_status\":%ld,\"errors_body\":%ld,\"errors_timeout\":%ld,"
           "\"max_in_flight\":%ld,\"syn_retransmits\":%ld,\"send_s\":%.3f,"
           "\"completion_s\":%.3f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f}\n",
           n, counts[OK], errors, counts[E_CONNECT], counts[E_RESET], counts[E_STATUS],
           counts[E_BODY], counts[E_TIMEOUT], max_in_flight, syn_retransmits,
           t_last_sent ? secs(t_last_sent - t0) : 0.0, t_last_done ? secs(t_last_done - t0) : 0.0,
           p50, p99, pmax);
    return 0;
}
