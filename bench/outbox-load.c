/*
 * outbox-load: the load tool of the outbox benchmark (bench/outbox.sh).
 * Sends R unsigned Cliq command calls (the host runs with --no-verify) to the
 * host from C connections at once, each connection one call after another
 * over HTTP/1.1 keep-alive, and times every call on CLOCK_MONOTONIC (the
 * clock bench/outbox-sink.c stamps arrivals with).
 *
 *   outbox-load --connect ADDR:PORT --command NAME --requests R
 *               [--concurrency C] [--count K] [--wait 0|1] [--probe]
 *               [--probe-from P] [--gap-ms MS] [--out FILE] [--timeout S]
 *               [--arguments TEXT]
 *
 * Each call is the command NAME with params.options = {count = K, wait =
 * true|false, probe = I}, where I is P (--probe-from, default 0) plus the
 * call's number (0..R-1), and probe is there only with --probe;
 * params.arguments is TEXT (--arguments, default empty; bench/store.sh's
 * handler reads its operation there), which may not hold '"' or '\'. The
 * handler answers {"text":"accepted N"}; the tool adds up the N it reads.
 *
 * --gap-ms MS waits MS between a reply and the connection's next call.
 * --out FILE writes one line per call: "I SEND_NS REPLY_NS STATUS ACCEPTED".
 * Prints one line of JSON: calls, ok, errors, accepted (sum), start_ns,
 * end_ns (the last reply), elapsed_s, call latency p50/p99/max in ms, and
 * the tool's own CPU time (cpu_s).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct call {
    int64_t send_ns, reply_ns;
    int status;
    long accepted;
};

static struct sockaddr_in addr;
static const char *command = "burst";
static const char *arguments = "";
static long requests = 1, count = 1, gap_ms = 0, timeout_s = 120;
static int concurrency = 1, wait_flag = 0, probe = 0;
static long probe_from = 0;
static struct call *calls;
static atomic_long next_call;
static atomic_long errors_seen;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int dial(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = timeout_s};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads one response (nothing is pipelined, so nothing follows it). Returns
 * its status with the body in buf (NUL-ended) at *body_out, or -1;
 * *close_after is set when the server will close the connection. */
static int read_response(int fd, char *buf, size_t cap, char **body_out, int *close_after)
{
    size_t len = 0;
    char *end;
    while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
        if (len == cap - 1)
            return -1;
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    size_t head = (size_t)(end + 4 - buf);
    int status = 0;
    if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    buf[head - 1] = '\0';
    const char *cl = strcasestr(buf, "\r\ncontent-length:");
    const char *conn = strcasestr(buf, "\r\nconnection:");
    *close_after = conn && strncasecmp(conn + 13 + strspn(conn + 13, " "), "close", 5) == 0;
    if (!cl)
        return -1; /* the host always sends Content-Length */
    size_t body = strtoul(cl + 17, NULL, 10);
    if (head + body > cap - 1)
        return -1;
    while (len < head + body) {
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
    buf[head + body] = '\0';
    *body_out = buf + head;
    return status;
}

static void *worker(void *arg)
{
    (void)arg;
    static _Thread_local char buf[256 * 1024];
    char req[2048], payload[1024];
    int fd = -1;
    for (;;) {
        long i = atomic_fetch_add(&next_call, 1);
        if (i >= requests)
            break;
        if (fd < 0)
            fd = dial();
        struct call *c = &calls[i];
        c->status = -1;
        char probe_field[40] = "";
        if (probe)
            snprintf(probe_field, sizeof probe_field, ",\"probe\":%ld", probe_from + i);
        int plen = snprintf(payload, sizeof payload,
                            "{\"type\":\"command\",\"name\":\"%s\",\"timestamp\":0,"
                            "\"handler\":{\"type\":\"execution_handler\"},"
                            "\"params\":{\"arguments\":\"%s\",\"options\":{\"count\":%ld,"
                            "\"wait\":%s%s}}}",
                            command, arguments, count, wait_flag ? "true" : "false", probe_field);
        int rlen = snprintf(req, sizeof req,
                            "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                            "\r\nContent-Length: %d\r\n\r\n%s",
                            plen, payload);
        c->send_ns = now_ns();
        char *body = NULL;
        int close_after = 0;
        int status = fd < 0 || write_all(fd, req, (size_t)rlen) < 0
                         ? -1
                         : read_response(fd, buf, sizeof buf, &body, &close_after);
        c->reply_ns = now_ns();
        c->status = status;
        if (status == 200 && body) {
            const char *a = strstr(body, "accepted ");
            c->accepted = a ? strtol(a + 9, NULL, 10) : 0;
        }
        if (status != 200) {
            long e = atomic_fetch_add(&errors_seen, 1);
            if (e < 5)
                fprintf(stderr, "call %ld: %s %.300s\n", i, status < 0 ? "failed" : "status",
                        status < 0 ? strerror(errno) : (body ? body : ""));
        }
        if (status < 0 || close_after) {
            if (fd >= 0)
                close(fd);
            fd = -1;
        }
        if (gap_ms > 0)
            usleep((useconds_t)gap_ms * 1000);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    const char *connect_to = NULL, *out = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--probe") == 0) {
            probe = 1;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (strcmp(a, "--connect") == 0)
            connect_to = v;
        else if (strcmp(a, "--command") == 0)
            command = v;
        else if (strcmp(a, "--requests") == 0)
            requests = atol(v);
        else if (strcmp(a, "--concurrency") == 0)
            concurrency = atoi(v);
        else if (strcmp(a, "--count") == 0)
            count = atol(v);
        else if (strcmp(a, "--wait") == 0)
            wait_flag = atoi(v);
        else if (strcmp(a, "--probe-from") == 0)
            probe_from = atol(v);
        else if (strcmp(a, "--gap-ms") == 0)
            gap_ms = atol(v);
        else if (strcmp(a, "--out") == 0)
            out = v;
        else if (strcmp(a, "--timeout") == 0)
            timeout_s = atol(v);
        else if (strcmp(a, "--arguments") == 0)
            arguments = v;
        else
            goto usage;
    }
    if (!connect_to || requests < 1 || concurrency < 1 || count < 0 || timeout_s < 1 ||
        strpbrk(arguments, "\"\\") || strlen(arguments) > 200)
        goto usage;
    {
        char host[64];
        const char *colon = strrchr(connect_to, ':');
        if (!colon || (size_t)(colon - connect_to) >= sizeof host)
            goto usage;
        memcpy(host, connect_to, (size_t)(colon - connect_to));
        host[colon - connect_to] = '\0';
        addr.sin_family = AF_INET;
        addr.sin_port = htons((uint16_t)atoi(colon + 1));
        if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
            goto usage;
    }
    if (concurrency > requests)
        concurrency = (int)requests;
    calls = calloc((size_t)requests, sizeof *calls);
    pthread_t *th = calloc((size_t)concurrency, sizeof *th);
    if (!calls || !th) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    int64_t start = now_ns();
    for (int i = 0; i < concurrency; i++)
        if (pthread_create(&th[i], NULL, worker, NULL) != 0) {
            fprintf(stderr, "cannot start a thread\n");
            return 1;
        }
    for (int i = 0; i < concurrency; i++)
        pthread_join(th[i], NULL);
    int64_t end = start;
    long ok = 0, errs = 0, accepted = 0;
    int64_t *lat = calloc((size_t)requests, sizeof *lat);
    FILE *f = out ? fopen(out, "w") : NULL;
    if (out && !f) {
        fprintf(stderr, "cannot write %s: %s\n", out, strerror(errno));
        return 1;
    }
    for (long i = 0; i < requests; i++) {
        struct call *c = &calls[i];
        if (c->reply_ns > end)
            end = c->reply_ns;
        if (c->status == 200)
            ok++;
        else
            errs++;
        accepted += c->accepted;
        lat[i] = c->reply_ns - c->send_ns;
        if (f)
            fprintf(f, "%ld %lld %lld %d %ld\n", i, (long long)c->send_ns, (long long)c->reply_ns,
                    c->status, c->accepted);
    }
    if (f)
        fclose(f);
    qsort(lat, (size_t)requests, sizeof *lat, cmp_i64);
    size_t p99 = (size_t)((double)requests * 0.99);
    if (p99 >= (size_t)requests)
        p99 = (size_t)requests - 1;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu_s = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                   (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    printf("{\"calls\":%ld,\"concurrency\":%d,\"count_per_call\":%ld,\"ok\":%ld,\"errors\":%ld,"
           "\"accepted\":%ld,\"start_ns\":%lld,\"end_ns\":%lld,\"elapsed_s\":%.3f,"
           "\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"cpu_s\":%.3f}\n",
           requests, concurrency, count, ok, errs, accepted, (long long)start, (long long)end,
           (double)(end - start) / 1e9, (double)lat[requests / 2] / 1e6, (double)lat[p99] / 1e6,
           (double)lat[requests - 1] / 1e6, cpu_s);
    return errs ? 1 : 0;
usage:
    fprintf(stderr,
            "usage: %s --connect ADDR:PORT [--command NAME] --requests R [--concurrency C]\n"
            "          [--count K] [--wait 0|1] [--probe] [--probe-from P] [--gap-ms MS]\n"
            "          [--out FILE] [--timeout S] [--arguments TEXT (no '\"' or '\\')]\n",
            argv[0]);
    return 2;
}
