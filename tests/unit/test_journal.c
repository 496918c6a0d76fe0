/* Unit tests for the journal: the ring keeps the last N calls, an entry
 * never holds more than its cap (and says it was cut), secrets are
 * masked, and appends from several threads lose nothing. */
#include "check.h"
#include "core/buf.h"
#include "core/jsonw.h"
#include "core/log.h"
#include "serve/journal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static void test_ring_keeps_the_last(void)
{
    CHECK(journal_new(0, 1024) == NULL); /* 0: no journal */
    journal_event(NULL, 1, "{}", 2);     /* and nothing to do */
    struct journal *j = journal_new(3, 4096);
    unsigned long long ids[5];
    for (int i = 0; i < 5; i++) {
        char body[32];
        snprintf(body, sizeof body, "{\"n\":%d}", i);
        ids[i] = journal_begin(j, "call", "req", body, strlen(body));
    }
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(journal_get(j, ids[0], &b), -1); /* pushed out */
    CHECK_INT(journal_get(j, ids[1], &b), -1);
    CHECK_INT(journal_get(j, ids[4], &b), 0);
    CHECK(strstr(b.data, "{\\\"n\\\":4}") != NULL);
    buf_reset(&b);
    journal_list(j, &b);
    CHECK(strstr(b.data, "\"kept\":3,\"max\":3") != NULL);
    /* newest first */
    char *p4 = strstr(b.data, "\"id\":5"), *p3 = strstr(b.data, "\"id\":4");
    CHECK(p4 && p3 && p4 < p3);
    buf_free(&b);
    journal_free(j);
}

static void test_entry_cap(void)
{
    struct journal *j = journal_new(4, 1024);
    char big[4000];
    memset(big, 'x', sizeof big);
    unsigned long long id = journal_begin(j, "call", "r1", big, sizeof big);
    journal_reply(j, id, 200, big, sizeof big, 3, 0);
    for (int i = 0; i < 100; i++)
        journal_event(j, id, "{\"kind\":\"log\",\"line\":\"hello there\"}", 36);
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(journal_get(j, id, &b), 0);
    CHECK(strstr(b.data, "\"truncated\":true") != NULL);
    CHECK(strstr(b.data, "\"dropped_events\":100") != NULL);
    CHECK(journal_bytes(j) <= 1024);
    /* Four entries, all full: the journal holds at most 4 x 1024. */
    for (int i = 0; i < 10; i++) {
        id = journal_begin(j, "call", "r", big, sizeof big);
        journal_event(j, id, "{}", 2);
    }
    CHECK(journal_bytes(j) <= 4 * 1024);
    CHECK(journal_bytes(j) >= 4 * 1000);
    buf_free(&b);
    journal_free(j);
}

static void test_secrets_masked(void)
{
    struct journal *j = journal_new(2, 8192);
    log_add_secret("s3cr3t-token-value");
    const char *body = "{\"url\":\"https://x.example/?zapikey=s3cr3t-token-value\"}";
    unsigned long long id = journal_begin(j, "call", "r", body, strlen(body));
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(journal_get(j, id, &b), 0);
    CHECK(strstr(b.data, "s3cr3t-token-value") == NULL);
    buf_free(&b);
    journal_free(j);
}

static void test_changes(void)
{
    struct journal *j = journal_new(8, 8192);
    unsigned long long seq = journal_seq(j);
    unsigned long long a = journal_begin(j, "call", "a", "{}", 2);
    journal_begin(j, "call", "b", "{}", 2);
    journal_reply(j, a, 200, "{}", 2, 1, 0); /* a changed after b */
    struct buf b;
    buf_init(&b, 1 << 20);
    CHECK_INT(journal_changes(j, &seq, &b), 2);
    char *pb = strstr(b.data, "\"request_id\":\"b\""), *pa = strstr(b.data, "\"request_id\":\"a\"");
    CHECK(pa && pb && pb < pa);
    buf_reset(&b);
    CHECK_INT(journal_changes(j, &seq, &b), 0);
    buf_free(&b);
    /* A watcher whose room cannot hold the changes is told so (the
     * console drops a page that fell that far behind). */
    unsigned long long from = 0;
    struct buf small;
    buf_init(&small, 300);
    CHECK_INT(journal_changes(j, &from, &small), -1);
    CHECK(small.len <= 300);
    buf_free(&small);
    journal_free(j);
}

struct worker_arg {
    struct journal *j;
    int n;
};

static void *appender(void *ud)
{
    struct worker_arg *a = ud;
    for (int i = 0; i < a->n; i++) {
        unsigned long long id = journal_begin(a->j, "call", "t", "{\"a\":1}", 7);
        journal_dispatch(a->j, id, "command", "deploy", "execution");
        journal_event(a->j, id, "{\"kind\":\"log\"}", 14);
        journal_reply(a->j, id, 200, "{}", 2, 1, 0);
    }
    return NULL;
}

static void test_concurrent_appends(void)
{
    struct journal *j = journal_new(50, 2048);
    pthread_t t[4];
    struct worker_arg a = {j, 2000};
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, appender, &a);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    struct buf b;
    buf_init(&b, 1 << 22);
    journal_list(j, &b);
    CHECK(strstr(b.data, "\"kept\":50,") != NULL);
    CHECK(strstr(b.data, "\"id\":8000,") != NULL); /* every begin got an id */
    CHECK_INT(journal_get(j, 8000, &b), 0);
    CHECK_INT(journal_get(j, 7950, &b), -1);
    buf_free(&b);
    journal_free(j);
}

/* An entry of control bytes (six each once escaped) still reads out whole
 * in journal_get_max bytes. */
static void test_get_max_holds_the_worst(void)
{
    struct journal *j = journal_new(2, 1024);
    char ctl[1024];
    memset(ctl, 1, sizeof ctl);
    unsigned long long id = journal_begin(j, "call", "r1", ctl, 600);
    journal_reply(j, id, 401, ctl, 400, 1, 0);
    struct buf b;
    buf_init(&b, journal_get_max(j));
    CHECK_INT(journal_get(j, id, &b), 0);
    CHECK(b.len > 6000);
    CHECK(b.len >= 2 && !strcmp(b.data + b.len - 2, "]}"));
    buf_free(&b);
    journal_free(j);
}

/* A slot that is used again keeps its memory: each entry still shows its
 * own body and reply, also when the reply outgrows what the slot held and
 * when a shorter entry follows a longer one. */
static void test_slot_reused(void)
{
    struct journal *j = journal_new(1, 65536);
    char big[6000];
    memset(big, 'r', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    struct buf b;
    buf_init(&b, 1 << 20);
    static const char *const bodies[] = {"{\"a\":1}", "{\"bbbbbbbbbbbbbbbbbbbbbbbb\":2}", "{}"};
    for (int i = 0; i < 3; i++) {
        unsigned long long id = journal_begin(j, "call", "req", bodies[i], strlen(bodies[i]));
        const char *reply = i == 0 ? big : i == 1 ? "{\"output\":\"x\"}" : NULL;
        if (reply)
            journal_reply(j, id, 200, reply, strlen(reply), 1, 0);
        buf_reset(&b);
        CHECK_INT(journal_get(j, id, &b), 0);
        struct buf want;
        buf_init(&want, 1 << 20);
        jsonw_string(&want, bodies[i], strlen(bodies[i]), JSONW_REPLACE, NULL);
        CHECK(strstr(b.data, want.data) != NULL);
        buf_free(&want);
        if (i == 0)
            CHECK(strstr(b.data, "rrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrrr\"") !=
                  NULL);
        if (i == 1)
            CHECK(strstr(b.data, "\"reply\":\"{\\\"output\\\":\\\"x\\\"}\"") != NULL);
        if (i == 2)
            CHECK(strstr(b.data, "\"reply\":null") != NULL);
        char *copy;
        size_t len;
        int cut;
        CHECK_INT(journal_body(j, id, &copy, &len, &cut), 0);
        CHECK_STR(copy, bodies[i]);
        CHECK_INT(len, strlen(bodies[i]));
        free(copy);
    }
    buf_free(&b);
    journal_free(j);
}

int main(void)
{
    RUN(test_ring_keeps_the_last);
    RUN(test_entry_cap);
    RUN(test_secrets_masked);
    RUN(test_changes);
    RUN(test_concurrent_appends);
    RUN(test_get_max_holds_the_worst);
    RUN(test_slot_reused);
    return CHECK_DONE();
}
