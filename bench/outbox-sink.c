/*
 * outbox-sink: the local stand-in for Cliq's incoming-webhook endpoints in
 * the outbox benchmark (bench/outbox.sh). An HTTP/1.1 server on one epoll
 * loop that answers every request at once with 204 No Content, as Cliq's
 * channel endpoint does, and counts what it received.
 *
 *   outbox-sink [--listen ADDR:PORT] [--token TOKEN] [--probe-log FILE]
 *
 * It prints "listening on ADDR:PORT" on stdout once it accepts connections.
 * SIGUSR1 prints one line of JSON statistics (the counters are never reset);
 * SIGTERM and SIGINT print the same line and exit. SIGUSR2 stalls the sink
 * (it still accepts connections but reads nothing, so requests wait
 * unanswered, as when Cliq hangs) and, sent again, resumes it; each prints
 * {"paused":true|false,"at_ns":T}.
 *
 * Counted per request: channel posts (POST /api/v2/channelsbyname/NAME/message),
 * other paths, requests whose zapikey is not TOKEN (when --token is given),
 * bodies that are not a {"text":...} object, and the CLOCK_MONOTONIC times of
 * the first and the last channel post, so the benchmark can tell when the
 * N-th post arrived on the same clock as its load tool.
 *
 * --probe-log FILE: for each request whose body holds "probe-ID", writes a
 * line "ID ARRIVAL_NS" (CLOCK_MONOTONIC) to FILE, so the benchmark can put a
 * probe's arrival next to the time its request was sent.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_MAX  (64 * 1024) /* request head plus body; over this: 413 and close */
#define RESPONSE "HTTP/1.1 204 No Content\r\n\r\n"

struct conn {
    int fd;
    size_t len;
    char buf[BUF_MAX];
    char out[4096]; /* answers not yet written (pipelined requests) */
    size_t out_len;
    int close_after;
};

static struct conn **conns;
static size_t nconns_cap;
static int ep;
static const char *want_token;
static FILE *probe_log;
static int paused;
static int max_fd; /* the highest connection fd seen, for resuming */

static struct {
    long long requests, channel_posts, other_paths, bad_token, bad_body, bad_requests;
    long long open, max_open, accepted;
    long long body_bytes;
    int64_t first_ns, last_ns;
} st;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void print_stats(void)
{
    printf("{\"requests\":%lld,\"channel_posts\":%lld,\"other_paths\":%lld,\"bad_token\":%lld,"
           "\"bad_body\":%lld,\"bad_requests\":%lld,\"body_bytes\":%lld,"
           "\"connections_accepted\":%lld,\"open_connections\":%lld,"
           "\"max_open_connections\":%lld,\"first_ns\":%lld,\"last_ns\":%lld,\"now_ns\":%lld}\n",
           st.requests, st.channel_posts, st.other_paths, st.bad_token, st.bad_body,
           st.bad_requests, st.body_bytes, st.accepted, st.open, st.max_open,
           (long long)st.first_ns, (long long)st.last_ns, (long long)now_ns());
    fflush(stdout);
}

static void conn_close(struct conn *c)
{
    conns[c->fd] = NULL;
    close(c->fd);
    st.open--;
    free(c);
}

/* Writes what is queued in c->out. Returns 0 when all went, 1 when the
 * socket is full, -1 on an error. */
static int conn_flush(struct conn *c)
{
    size_t off = 0;
    while (off < c->out_len) {
        ssize_t n = write(c->fd, c->out + off, c->out_len - off);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return -1;
        }
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
    return c->out_len ? 1 : 0;
}

/* A header's value in a request head (case-insensitive name), or NULL. */
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

/* Looks at one whole request: its request line and its body. */
static void count_request(const char *head, size_t head_len, const char *body, size_t body_len)
{
    int64_t now = now_ns();
    st.requests++;
    st.body_bytes += (long long)body_len;
    const char *eol = memchr(head, '\r', head_len);
    size_t line_len = eol ? (size_t)(eol - head) : head_len;
    static const char prefix[] = "POST /api/v2/channelsbyname/";
    const char *q = memchr(head, '?', line_len);
    int channel = line_len > sizeof prefix && memcmp(head, prefix, sizeof prefix - 1) == 0 && q &&
                  q - head >= 8 && memcmp(q - 8, "/message", 8) == 0;
    if (channel) {
        st.channel_posts++;
        if (!st.first_ns)
            st.first_ns = now;
        st.last_ns = now;
    } else {
        st.other_paths++;
    }
    if (want_token) {
        const char *k = q ? memmem(q, line_len - (size_t)(q - head), "zapikey=", 8) : NULL;
        size_t tl = strlen(want_token);
        const char *end = k ? k + 8 + tl : NULL;
        if (!k || end > head + line_len || memcmp(k + 8, want_token, tl) != 0 ||
            (*end != '&' && *end != ' '))
            st.bad_token++;
    }
    if (body_len < 10 || memcmp(body, "{\"text\":\"", 9) != 0 || body[body_len - 1] != '}')
        st.bad_body++;
    if (probe_log) {
        const char *p = memmem(body, body_len, "probe-", 6);
        if (p) {
            p += 6;
            const char *e = p;
            while (e < body + body_len && *e >= '0' && *e <= '9')
                e++;
            fprintf(probe_log, "%.*s %lld\n", (int)(e - p), p, (long long)now);
            fflush(probe_log);
        }
    }
}

/* Answers every whole request in c->buf. Returns -1 to close. */
static int conn_parse(struct conn *c)
{
    size_t off = 0;
    for (;;) {
        char *start = c->buf + off;
        size_t left = c->len - off;
        char *end = memmem(start, left, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t head = (size_t)(end + 4 - start);
        if (head < 16 || !memchr(start, ' ', head)) {
            st.bad_requests++;
            return -1;
        }
        size_t cl = 0;
        const char *v = header_value(start, head, "content-length");
        if (v) {
            char *e;
            unsigned long long n = strtoull(v, &e, 10);
            if (e == v || n > BUF_MAX) {
                st.bad_requests++;
                return -1;
            }
            cl = (size_t)n;
        } else if (header_value(start, head, "transfer-encoding")) {
            st.bad_requests++; /* the host sends Content-Length */
            return -1;
        }
        if (left < head + cl)
            break;
        if (c->out_len + sizeof RESPONSE - 1 > sizeof c->out)
            break; /* the client does not read its answers: wait */
        count_request(start, head, start + head, cl);
        const char *eol = memchr(start, '\r', head);
        if (eol - start >= 8 && memcmp(eol - 8, "HTTP/1.0", 8) == 0)
            c->close_after = 1;
        v = header_value(start, head, "connection");
        if (v && strncasecmp(v, "close", 5) == 0)
            c->close_after = 1;
        memcpy(c->out + c->out_len, RESPONSE, sizeof RESPONSE - 1);
        c->out_len += sizeof RESPONSE - 1;
        off += head + cl;
        if (c->close_after)
            break;
    }
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    if (c->len == sizeof c->buf) {
        st.bad_requests++;
        return -1;
    }
    return 0;
}

static void conn_event(struct conn *c)
{
    for (;;) {
        if (c->len < sizeof c->buf) {
            ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
            if (n > 0) {
                c->len += (size_t)n;
                if (conn_parse(c) < 0) {
                    conn_close(c);
                    return;
                }
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                conn_flush(c);
                conn_close(c);
                return;
            }
        }
        break;
    }
    int r = conn_flush(c);
    if (r < 0 || (r == 0 && c->close_after)) {
        conn_close(c);
        return;
    }
    if (r == 0 && c->len && conn_parse(c) == 0 && c->out_len)
        conn_flush(c); /* answers that waited for room */
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return;
        }
        struct conn *c = (size_t)fd < nconns_cap ? malloc(sizeof *c) : NULL;
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->len = c->out_len = 0;
        c->close_after = 0;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            close(fd);
            free(c);
            continue;
        }
        conns[fd] = c;
        if (fd > max_fd)
            max_fd = fd;
        st.accepted++;
        if (++st.open > st.max_open)
            st.max_open = st.open;
    }
}

static int parse_listen(const char *s, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (!colon || (size_t)(colon - s) >= sizeof host)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    char *e;
    long port = strtol(colon + 1, &e, 10);
    if (*e || port < 0 || port > 65535)
        return -1;
    memset(sa, 0, sizeof *sa);
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    const char *listen_at = "127.0.0.1:0";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_at = argv[++i];
        } else if (strcmp(argv[i], "--token") == 0 && i + 1 < argc) {
            want_token = argv[++i];
        } else if (strcmp(argv[i], "--probe-log") == 0 && i + 1 < argc) {
            probe_log = fopen(argv[++i], "a");
            if (!probe_log) {
                fprintf(stderr, "cannot open %s: %s\n", argv[i], strerror(errno));
                return 1;
            }
        } else {
            fprintf(stderr, "usage: %s [--listen ADDR:PORT] [--token T] [--probe-log FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    nconns_cap = rl.rlim_cur > 65536 ? 65536 : (size_t)rl.rlim_cur;
    conns = calloc(nconns_cap, sizeof *conns);
    if (!conns) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    struct sockaddr_in sa;
    if (parse_listen(listen_at, &sa) < 0) {
        fprintf(stderr, "bad --listen %s (want IPv4ADDR:PORT)\n", listen_at);
        return 2;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (lfd >= 0)
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 4096) < 0) {
        fprintf(stderr, "cannot listen on %s: %s\n", listen_at, strerror(errno));
        return 1;
    }
    socklen_t salen = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &salen);

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);
    sigaddset(&sigs, SIGUSR2);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = lfd};
    if (sfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        fprintf(stderr, "cannot set up epoll: %s\n", strerror(errno));
        return 1;
    }
    ev.data.fd = sfd;
    epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);

    char addr[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &sa.sin_addr, addr, sizeof addr);
    printf("listening on %s:%u\n", addr, (unsigned)ntohs(sa.sin_port));
    fflush(stdout);

    static struct epoll_event events[1024];
    for (;;) {
        int n = epoll_wait(ep, events, 1024, -1);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "epoll_wait: %s\n", strerror(errno));
            return 1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == lfd) {
                accept_all(lfd);
            } else if (fd == sfd) {
                struct signalfd_siginfo si;
                while (read(sfd, &si, sizeof si) == sizeof si) {
                    if (si.ssi_signo == SIGUSR2) {
                        paused = !paused;
                        printf("{\"paused\":%s,\"at_ns\":%lld}\n", paused ? "true" : "false",
                               (long long)now_ns());
                        fflush(stdout);
                        /* Edge-triggered: what arrived meanwhile is read now. */
                        for (int k = 0; !paused && k <= max_fd; k++)
                            if (conns[k])
                                conn_event(conns[k]);
                        continue;
                    }
                    print_stats();
                    if (si.ssi_signo != SIGUSR1)
                        return 0;
                }
            } else if (paused) {
                continue; /* read later, on resuming */
            } else if ((size_t)fd < nconns_cap && conns[fd]) {
                conn_event(conns[fd]);
            }
        }
    }
}
