/* Unit tests for event/redis: the async connection's timing on its loop,
 * against a tiny Redis stand-in on a loopback socket (a thread that
 * answers each command with a fixed reply). The end-to-end behaviour
 * against a real redis-server is in tests/e2e/test_store_redis.py. */
#include "check.h"
#include "event/redis.h"
#include "event/sched.h"

#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* A stand-in that accepts one connection and answers +PONG to whatever
 * each read brings, until the client closes it. */
struct standin {
    int fd;
    unsigned port;
};

static void *serve(void *arg)
{
    struct standin *sv = arg;
    int c = accept(sv->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    char buf[4096];
    while (read(c, buf, sizeof buf) > 0) {
        const char pong[] = "+PONG\r\n";
        if (write(c, pong, sizeof pong - 1) < 0)
            break;
    }
    close(c);
    return NULL;
}

static void standin_open(struct standin *sv)
{
    sv->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(sv->fd, (struct sockaddr *)&a, sizeof a);
    listen(sv->fd, 4);
    socklen_t len = sizeof a;
    getsockname(sv->fd, (struct sockaddr *)&a, &len);
    sv->port = ntohs(a.sin_port);
}

/* What on_state was told, in order: "u" up, "d" down. */
static char states[32];
static char last_why[512];

static void on_state(int up, const char *why, void *ud)
{
    (void)ud;
    size_t n = strlen(states);
    if (n + 1 < sizeof states) {
        states[n] = up ? 'u' : 'd';
        states[n + 1] = '\0';
    }
    snprintf(last_why, sizeof last_why, "%s", why);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A connection to the stand-in with a 100 ms timeout; forgets what
 * on_state was told before. */
static struct redis_conn *connect_to(struct sched *s, const struct standin *sv)
{
    struct redis_target t;
    char err[256], url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%u/0", sv->port);
    CHECK_INT(redis_parse_url(url, &t, err, sizeof err), 0);
    states[0] = '\0';
    return redis_conn_new(s, &t, 100, NULL, NULL, 0, on_state, NULL);
}

/* Turns the loop until on_state was told something (5 s at most). */
static void run_until_told(struct sched *s)
{
    long long t0 = sched_clock_ms();
    while (!states[0] && sched_clock_ms() - t0 < 5000)
        sched_run_once(s, 50);
}

/* A worker makes its connection, then sets up the rest of itself (its Lua
 * state, the HTTP daemon, the other workers) before its loop runs: slow
 * under a sanitizer or on a loaded machine. Time spent before the loop
 * turns is not Redis' to answer for: the connection comes up, without a
 * "did not answer" first. */
static void test_a_late_loop_is_not_an_outage(void)
{
    struct standin sv;
    standin_open(&sv);
    pthread_t th;
    pthread_create(&th, NULL, serve, &sv);
    struct sched *s = sched_new(NULL, NULL, NULL);
    struct redis_conn *c = connect_to(s, &sv);
    sleep_ms(300); /* the rest of the worker's setup */
    run_until_told(s);
    CHECK_STR(states, "u");
    CHECK_STR(last_why, "connected");
    CHECK(redis_conn_up(c));
    redis_conn_free(c);
    sched_free(s);
    pthread_join(th, NULL);
    close(sv.fd);
}

/* A server that never answers the setup still fails it in time. */
static void test_no_answer_to_the_setup(void)
{
    struct standin sv;
    standin_open(&sv); /* listens, never accepts: the kernel completes the handshake */
    struct sched *s = sched_new(NULL, NULL, NULL);
    struct redis_conn *c = connect_to(s, &sv);
    run_until_told(s);
    CHECK_STR(states, "d");
    CHECK_HAS(last_why, "in 100 ms");
    CHECK(!redis_conn_up(c));
    redis_conn_free(c);
    sched_free(s);
    close(sv.fd);
}

int main(void)
{
    RUN(test_a_late_loop_is_not_an_outage);
    RUN(test_no_answer_to_the_setup);
    return CHECK_DONE();
}
