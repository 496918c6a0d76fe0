/* Unit tests for sched (timers and fd watchers) and fetch (outbound HTTP
 * on the loop), against a tiny HTTP server on a loopback socket. */
#include "check.h"
#include "event/fetch.h"
#include "event/sched.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

static char order[64];
static size_t norder;

static void note(struct sched *s, void *ud)
{
    (void)s;
    order[norder++] = *(const char *)ud;
    order[norder] = '\0';
}

static void test_timers_fire_in_order(void)
{
    struct sched *s = sched_new(NULL, NULL, NULL);
    norder = 0;
    order[0] = '\0';
    static const char a = 'a', b = 'b', c = 'c', d = 'd', x = 'x';
    long long t0 = sched_clock_ms(); /* before the timers, which count from when they are added */
    sched_timer_add(s, 30, note, (void *)&c);
    sched_timer_add(s, 10, note, (void *)&a);
    struct sched_timer *gone = sched_timer_add(s, 20, note, (void *)&x);
    sched_timer_add(s, 10, note, (void *)&b); /* a tie fires in the order added */
    sched_timer_add(s, 0, note, (void *)&d);
    sched_timer_cancel(s, gone);
    while (norder < 4 && sched_clock_ms() - t0 < 2000)
        sched_run_once(s, 100);
    CHECK_STR(order, "dabc");
    CHECK(sched_clock_ms() - t0 >= 30);
    sched_free(s);
}

/* A callback that adds a timer, and one that stops the loop. */
static void stop_cb(struct sched *s, void *ud)
{
    (*(int *)ud)++;
    sched_stop(s);
}

static void chain_cb(struct sched *s, void *ud)
{
    sched_timer_add(s, 5, stop_cb, ud);
}

static void test_timer_from_a_callback_and_stop(void)
{
    struct sched *s = sched_new(NULL, NULL, NULL);
    int stopped = 0;
    sched_timer_add(s, 5, chain_cb, &stopped);
    sched_run(s); /* returns once the chained timer stopped the loop */
    CHECK(sched_stopping(s));
    CHECK_INT(stopped, 1);
    sched_free(s); /* frees nothing pending, without calling anything */
}

/* Two ready fds; the first callback unwatches the second, which must then
 * not be called even though it is in the same batch. */
static int fds[2][2];
static int called[2];

static void on_fd(struct sched *s, int fd, uint32_t ev, void *ud)
{
    (void)ev;
    int i = (int)(intptr_t)ud;
    called[i]++;
    char c;
    ssize_t r = read(fd, &c, 1);
    (void)r;
    sched_unwatch(s, fds[1 - i][0]);
}

static void test_unwatch_within_a_batch(void)
{
    struct sched *s = sched_new(NULL, NULL, NULL);
    CHECK_INT(pipe(fds[0]), 0);
    CHECK_INT(pipe(fds[1]), 0);
    CHECK_INT(sched_watch(s, fds[0][0], EPOLLIN, on_fd, (void *)0), 0);
    CHECK_INT(sched_watch(s, fds[1][0], EPOLLIN, on_fd, (void *)1), 0);
    CHECK_INT(write(fds[0][1], "x", 1), 1);
    CHECK_INT(write(fds[1][1], "x", 1), 1);
    sched_run_once(s, 100);
    CHECK_INT(called[0] + called[1], 1);
    sched_free(s);
    for (int i = 0; i < 2; i++) {
        close(fds[i][0]);
        close(fds[i][1]);
    }
}

/* ---- fetch ------------------------------------------------------------- */

struct server {
    int fd;
    unsigned port;
    const char *reply; /* sent after reading a request; NULL: never answer */
    int served;
};

static void *serve(void *arg)
{
    struct server *sv = arg;
    int c = accept(sv->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[4096];
    ssize_t n = read(c, buf, sizeof buf);
    (void)n;
    sv->served = 1;
    if (sv->reply) {
        size_t len = strlen(sv->reply);
        ssize_t w = write(c, sv->reply, len);
        (void)w;
        usleep(100 * 1000);
    } else {
        usleep(1500 * 1000);
    }
    close(c);
    return NULL;
}

static void server_open(struct server *sv, const char *reply)
{
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(sv->fd, (struct sockaddr *)&a, sizeof a);
    listen(sv->fd, 4);
    socklen_t al = sizeof a;
    getsockname(sv->fd, (struct sockaddr *)&a, &al);
    sv->port = ntohs(a.sin_port);
    sv->reply = reply;
    sv->served = 0;
}

static struct fetch_result got;
static char got_body[256], got_headers[512];
static int done;

static void on_done(struct fetch_result *r, void *ud)
{
    (void)ud;
    got = *r;
    snprintf(got_body, sizeof got_body, "%s", r->body.data ? r->body.data : "");
    snprintf(got_headers, sizeof got_headers, "%s", r->headers.data ? r->headers.data : "");
    got.body.data = got.headers.data = NULL;
    done = 1;
}

/* Fetches url with the given cap and timeout; returns when done. */
static void fetch_one(const char *url, size_t cap, long timeout_ms)
{
    struct sched *s = sched_new(NULL, NULL, NULL);
    struct fetch *f = fetch_new(s);
    struct fetch_request rq = {.url = url, .timeout_ms = timeout_ms, .max_response = cap};
    done = 0;
    memset(&got, 0, sizeof got);
    fetch_start(f, &rq, on_done, NULL);
    long long t0 = sched_clock_ms();
    while (!done && sched_clock_ms() - t0 < 5000)
        sched_run_once(s, 50);
    fetch_free(f);
    sched_free(s);
}

static void with_server(const char *reply, size_t cap, long timeout_ms)
{
    struct server sv;
    server_open(&sv, reply);
    pthread_t th;
    pthread_create(&th, NULL, serve, &sv);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/x", sv.port);
    fetch_one(url, cap, timeout_ms);
    pthread_join(th, NULL);
    close(sv.fd);
    CHECK(sv.served);
}

static void test_fetch_ok(void)
{
    with_server("HTTP/1.1 201 Created\r\nContent-Type: text/plain\r\nX-A: 1\r\n"
                "Content-Length: 5\r\n\r\nhello",
                1024, 2000);
    CHECK(done);
    CHECK(got.ok);
    CHECK_INT(got.status, 201);
    CHECK_STR(got_body, "hello");
    CHECK_HAS(got_headers, "X-A: 1");
}

static void test_fetch_cap(void)
{
    with_server("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", 1024, 2000);
    CHECK(done);
    CHECK(!got.ok);
    CHECK_HAS(got.error, "larger than 1024 bytes");
}

static void test_fetch_timeout(void)
{
    with_server(NULL, 1024, 300);
    CHECK(done);
    CHECK(!got.ok);
    CHECK(got.timed_out);
    CHECK_HAS(got.error, "timeout after 0.3 s");
}

static void test_fetch_refused_and_bad_url(void)
{
    struct server sv;
    server_open(&sv, NULL);
    close(sv.fd); /* nothing listens on that port now */
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/", sv.port);
    fetch_one(url, 1024, 2000);
    CHECK(done);
    CHECK(!got.ok);
    CHECK_HAS(got.error, "connect:");
    fetch_one("ftp://127.0.0.1/", 1024, 2000);
    CHECK(done);
    CHECK(!got.ok);
    fetch_one("not a url", 1024, 2000);
    CHECK(done);
    CHECK(!got.ok);
}

int main(void)
{
    fetch_global_init();
    RUN(test_timers_fire_in_order);
    RUN(test_timer_from_a_callback_and_stop);
    RUN(test_unwatch_within_a_batch);
    RUN(test_fetch_ok);
    RUN(test_fetch_cap);
    RUN(test_fetch_timeout);
    RUN(test_fetch_refused_and_bad_url);
    fetch_global_cleanup();
    return CHECK_DONE();
}
