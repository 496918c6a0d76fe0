/*
 * inflight-upstream: the slow upstream of the in-flight benchmark
 * (bench/inflight.sh). An HTTP/1.1 server on one epoll loop that accepts any
 * request and answers 200 with a tiny JSON body exactly DELAY ms after the
 * request arrived, so a client that calls it holds the request open for DELAY.
 *
 *   inflight-upstream [--listen ADDR:PORT] [--delay-ms MS]
 *
 * It prints "listening on ADDR:PORT" on stdout once it accepts connections.
 * SIGUSR1 prints one line of JSON statistics and starts counting afresh;
 * SIGTERM and SIGINT print the same line and exit. "max_pending" is the most
 * requests it held at once: the concurrency its callers achieved.
 *
 * Every request waits the same time, so requests fall due in the order they
 * arrived and a FIFO of (connection, due time) is the whole timer. Keep-alive
 * is honoured; pipelined requests wait their turn on their connection.
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

#define HEAD_MAX 8192 /* request line and headers; over this: 431 and close */
#define RESPONSE                                                                                   \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"

struct conn {
    int fd;
    uint32_t gen;     /* bumped on close, so stale queue entries are skipped */
    int pending;      /* a complete request waits in the queue */
    int close_after;  /* the request asked for Connection: close (or HTTP/1.0) */
    int peer_closed;  /* read() saw EOF; answer what is pending, then close */
    size_t head_len;  /* bytes of the pending request's head in buf */
    size_t body_left; /* body bytes of the current request still to discard */
    size_t len;       /* bytes in buf */
    char buf[HEAD_MAX];
    char out[256]; /* an unfinished response */
    size_t out_len, out_off;
};

struct due {
    int fd;
    uint32_t gen;
    int64_t at_ns;
    int64_t arrived_ns;
};

static struct conn **conns; /* indexed by fd */
static uint32_t *gens;      /* generation per fd, survives the conn */
static size_t nconns_cap;
static struct due *queue; /* ring buffer, one slot per possible fd */
static size_t q_head, q_len, q_cap;
static int ep;
static int64_t delay_ns;
static char body[128];
static int body_len;

static struct {
    long long accepted, answered, dropped, bad, accept_errors;
    long long pending, max_pending, open, max_open;
    int64_t late_ns_max; /* how far past its due time an answer went out */
} st;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void print_stats(void)
{
    printf("{\"accepted\":%lld,\"answered\":%lld,\"pending\":%lld,\"max_pending\":%lld,"
           "\"open_connections\":%lld,\"max_open_connections\":%lld,"
           "\"closed_while_pending\":%lld,\"bad_requests\":%lld,\"accept_errors\":%lld,"
           "\"late_ms_max\":%.3f,\"delay_ms\":%.3f}\n",
           st.accepted, st.answered, st.pending, st.max_pending, st.open, st.max_open, st.dropped,
           st.bad, st.accept_errors, (double)st.late_ns_max / 1e6, (double)delay_ns / 1e6);
    fflush(stdout);
}

/* Starts counting afresh; what is open or pending now stays counted. */
static void reset_stats(void)
{
    long long pending = st.pending, open = st.open;
    memset(&st, 0, sizeof st);
    st.pending = st.max_pending = pending;
    st.open = st.max_open = open;
}

static void conn_close(struct conn *c)
{
    if (c->pending) {
        st.pending--;
        st.dropped++;
    }
    gens[c->fd]++;
    conns[c->fd] = NULL;
    close(c->fd);
    st.open--;
    free(c);
}

/* Writes what is left of c->out. Returns 0 when all of it went, 1 when the
 * socket is full (EPOLLOUT resumes), -1 when the connection is gone. */
static int conn_flush(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 1;
        } else {
            return -1;
        }
    }
    c->out_len = c->out_off = 0;
    return 0;
}

static void conn_reply_simple(struct conn *c, const char *status)
{
    int n = snprintf(c->out, sizeof c->out,
                     "HTTP/1.1 %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
    c->out_len = (size_t)n;
    c->out_off = 0;
    conn_flush(c);
}

/* Finds a header's value in a request head (case-insensitive name). Returns
 * a pointer into head, or NULL. The value ends at the next '\r'. */
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

static void queue_push(struct conn *c, int64_t now)
{
    struct due *d = &queue[(q_head + q_len) % q_cap];
    d->fd = c->fd;
    d->gen = gens[c->fd];
    d->arrived_ns = now;
    d->at_ns = now + delay_ns;
    q_len++;
}

/* Parses as many requests from c->buf as it can; each complete one is queued.
 * Returns -1 when the connection must be closed. */
static int conn_parse(struct conn *c)
{
    while (!c->pending) {
        if (c->body_left) {
            size_t take = c->len < c->body_left ? c->len : c->body_left;
            memmove(c->buf, c->buf + take, c->len - take);
            c->len -= take;
            c->body_left -= take;
            if (c->body_left)
                return 0;
            c->pending = 1; /* the whole request is here: start its clock */
            st.pending++;
            if (st.pending > st.max_pending)
                st.max_pending = st.pending;
            queue_push(c, now_ns());
            return 0;
        }
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) {
            if (c->len == sizeof c->buf) {
                st.bad++;
                conn_reply_simple(c, "431 Request Header Fields Too Large");
                return -1;
            }
            return 0;
        }
        size_t head = (size_t)(end + 4 - c->buf);
        char *sp = memchr(c->buf, ' ', head);
        if (!sp || head < 16) {
            st.bad++;
            conn_reply_simple(c, "400 Bad Request");
            return -1;
        }
        const char *eol = memchr(c->buf, '\r', head);
        c->close_after = eol - c->buf >= 8 && memcmp(eol - 8, "HTTP/1.0", 8) == 0;
        const char *v = header_value(c->buf, head, "connection");
        if (v && strncasecmp(v, "close", 5) == 0)
            c->close_after = 1;
        if (header_value(c->buf, head, "transfer-encoding")) {
            st.bad++; /* nobody in this benchmark sends chunked requests */
            conn_reply_simple(c, "411 Length Required");
            return -1;
        }
        size_t body_len_req = 0;
        v = header_value(c->buf, head, "content-length");
        if (v) {
            char *e;
            unsigned long long cl = strtoull(v, &e, 10);
            if (e == v || cl > (1u << 30)) {
                st.bad++;
                conn_reply_simple(c, "400 Bad Request");
                return -1;
            }
            body_len_req = (size_t)cl;
        }
        memmove(c->buf, c->buf + head, c->len - head);
        c->len -= head;
        c->body_left = body_len_req;
        if (!c->body_left) {
            c->pending = 1;
            st.pending++;
            if (st.pending > st.max_pending)
                st.max_pending = st.pending;
            queue_push(c, now_ns());
        }
    }
    return 0;
}

/* Reads what the socket has, as far as buf allows. Returns -1 on an error;
 * EOF sets peer_closed. */
static int conn_read(struct conn *c)
{
    for (;;) {
        if (c->len == sizeof c->buf) {
            if (c->pending)
                return 0; /* leave the rest in the kernel until we answer */
            if (conn_parse(c) < 0)
                return -1;
            if (c->len == sizeof c->buf)
                return 0;
            continue;
        }
        ssize_t n = read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (n > 0) {
            c->len += (size_t)n;
        } else if (n == 0) {
            c->peer_closed = 1;
            return 0;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            return 0;
        } else {
            return -1;
        }
    }
}

/* Reads and parses what arrived; closes c (and returns -1) when the peer
 * hung up or the connection failed. A client that hangs up before its answer
 * is not waited for: conn_close counts it in closed_while_pending. */
static int conn_resume(struct conn *c)
{
    if (conn_read(c) < 0 || conn_parse(c) < 0 || (c->peer_closed && !c->out_len)) {
        conn_close(c);
        return -1;
    }
    return 0;
}

/* Handles readiness on a client connection. Frees c when it closes. */
static void conn_event(struct conn *c, uint32_t events)
{
    if (events & EPOLLOUT && c->out_len) {
        int r = conn_flush(c);
        if (r < 0 || (r == 0 && (c->close_after || c->peer_closed))) {
            conn_close(c);
            return;
        }
        if (r == 0 && conn_resume(c) < 0)
            return;
    }
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        conn_resume(c);
}

/* Answers the request at the head of the queue. */
static void answer(const struct due *d, int64_t now)
{
    struct conn *c = d->fd >= 0 && (size_t)d->fd < nconns_cap ? conns[d->fd] : NULL;
    if (!c || gens[d->fd] != d->gen || !c->pending)
        return; /* closed meanwhile; conn_close counted it */
    c->pending = 0;
    st.pending--;
    st.answered++;
    if (now - d->at_ns > st.late_ns_max)
        st.late_ns_max = now - d->at_ns;
    int n = snprintf(c->out, sizeof c->out, RESPONSE, body_len,
                     c->close_after ? "Connection: close\r\n" : "", body);
    c->out_len = (size_t)n;
    c->out_off = 0;
    int r = conn_flush(c);
    if (r < 0 || (r == 0 && (c->close_after || c->peer_closed))) {
        conn_close(c);
        return;
    }
    if (r == 0)
        conn_resume(c); /* a pipelined request may wait behind it */
}

static void accept_all(int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                st.accept_errors++;
            return;
        }
        if ((size_t)fd >= nconns_cap) {
            st.accept_errors++;
            close(fd);
            continue;
        }
        struct conn *c = malloc(sizeof *c); /* not calloc: buf need not be zeroed */
        if (!c) {
            st.accept_errors++;
            close(fd);
            continue;
        }
        memset(c, 0, offsetof(struct conn, buf));
        c->out_len = c->out_off = 0;
        c->fd = fd;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.fd = fd};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            st.accept_errors++;
            close(fd);
            free(c);
            continue;
        }
        conns[fd] = c;
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
    const char *listen_at = "127.0.0.2:0";
    long delay_ms = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen_at = argv[++i];
        } else if (strcmp(argv[i], "--delay-ms") == 0 && i + 1 < argc) {
            char *e;
            delay_ms = strtol(argv[++i], &e, 10);
            if (*e || delay_ms < 0) {
                fprintf(stderr, "bad --delay-ms\n");
                return 2;
            }
        } else {
            fprintf(stderr, "usage: %s [--listen ADDR:PORT] [--delay-ms MS]\n", argv[0]);
            return 2;
        }
    }
    delay_ns = (int64_t)delay_ms * 1000000;
    body_len = snprintf(body, sizeof body, "{\"ok\":true,\"delay_ms\":%ld}", delay_ms);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    nconns_cap = rl.rlim_cur > 4 * 1024 * 1024 ? 4 * 1024 * 1024 : (size_t)rl.rlim_cur;
    conns = calloc(nconns_cap, sizeof *conns);
    gens = calloc(nconns_cap, sizeof *gens);
    q_cap = nconns_cap;
    queue = calloc(q_cap, sizeof *queue);
    if (!conns || !gens || !queue) {
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
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 65535) < 0) {
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
    printf("listening on %s:%u (delay %ld ms, up to %zu connections)\n", addr,
           (unsigned)ntohs(sa.sin_port), delay_ms, nconns_cap);
    fflush(stdout);

    static struct epoll_event events[1024];
    for (;;) {
        int timeout = -1;
        if (q_len) {
            int64_t left = queue[q_head].at_ns - now_ns();
            timeout = left <= 0 ? 0 : (int)((left + 999999) / 1000000);
        }
        int n = epoll_wait(ep, events, 1024, timeout);
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
                    print_stats();
                    if (si.ssi_signo == SIGUSR1)
                        reset_stats();
                    else
                        return 0;
                }
            } else if ((size_t)fd < nconns_cap && conns[fd]) {
                conn_event(conns[fd], events[i].events);
            }
        }
        int64_t now = now_ns();
        while (q_len && queue[q_head].at_ns <= now) {
            struct due d = queue[q_head];
            q_head = (q_head + 1) % q_cap;
            q_len--;
            answer(&d, now);
        }
    }
}
