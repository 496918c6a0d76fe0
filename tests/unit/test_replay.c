/* Unit tests for replay: the window, repeats, and replay_forget, which must
 * leave every other remembered call findable (its table probes linearly,
 * so a hole left in a run of colliding entries would hide the ones after
 * it). */
#include "check.h"
#include "cliq/replay.h"

#include <string.h>

/* A 32-byte digest made from n. */
static void digest_of(unsigned n, unsigned char d[32])
{
    memset(d, 0, 32);
    memcpy(d, &n, sizeof n);
    d[31] = (unsigned char)(n * 7u);
}

static void test_window_and_repeats(void)
{
    struct replay *r = replay_new(300000, 1000);
    unsigned char d[32];
    long long age;
    digest_of(1, d);
    CHECK_INT(replay_check(r, 1000000, 1000000, d, 32, &age), REPLAY_OK);
    CHECK_INT(replay_check(r, 1000000, 1000500, d, 32, &age), REPLAY_REPEAT);
    CHECK_INT(age, 500);
    CHECK_INT(replay_check(r, 600000, 1000000, d, 32, &age), REPLAY_STALE);
    CHECK_INT(replay_check(r, 1400000, 1000000, d, 32, &age), REPLAY_FUTURE);
    digest_of(2, d);
    CHECK_INT(replay_peek(r, 1000000, 1000000, d, 32, &age), REPLAY_OK);
    CHECK_INT(replay_check(r, 1000000, 1000000, d, 32, &age), REPLAY_OK);
    CHECK_INT(replay_entries(r), 2);
    replay_free(r);
}

static void test_forget_keeps_the_others(void)
{
    struct replay *r = replay_new(300000, 100000);
    unsigned char d[32];
    long long age;
    const long long t = 5000000;
    enum { N = 3000 };
    for (unsigned i = 0; i < N; i++) {
        digest_of(i, d);
        CHECK_INT(replay_check(r, t, t, d, 32, &age), REPLAY_OK);
    }
    CHECK_INT(replay_entries(r), N);
    /* Every third one is forgotten: it is new again, the others repeat. */
    for (unsigned i = 0; i < N; i += 3) {
        digest_of(i, d);
        replay_forget(r, t, d, 32);
    }
    CHECK_INT(replay_entries(r), N - N / 3);
    int wrong = 0;
    for (unsigned i = 0; i < N; i++) {
        digest_of(i, d);
        enum replay_result want = i % 3 == 0 ? REPLAY_OK : REPLAY_REPEAT;
        if (replay_peek(r, t, t, d, 32, &age) != want)
            wrong++;
    }
    CHECK_INT(wrong, 0);
    /* Forgetting what is not there, or at another time, changes nothing. */
    digest_of(1, d);
    replay_forget(r, t + 10 * 60000, d, 32);
    digest_of(N + 5, d);
    replay_forget(r, t, d, 32);
    CHECK_INT(replay_entries(r), N - N / 3);
    digest_of(1, d);
    CHECK_INT(replay_peek(r, t, t, d, 32, &age), REPLAY_REPEAT);
    replay_forget(NULL, t, d, 32);
    replay_free(r);
}

/* A webhook id comes back with a new timestamp: it is a repeat for the
 * whole window, whichever bucket its first arrival went to. */
static void test_seen_across_buckets(void)
{
    const long long day = 86400LL * 1000, t = 100 * day;
    struct replay *r = replay_new(day, 1000);
    unsigned char d[32];
    long long age;
    digest_of(42, d);
    CHECK_INT(replay_seen(r, t, d, 32, &age), REPLAY_OK);
    for (long long later = 1000; later <= day; later += day / 7) {
        CHECK_INT(replay_seen(r, t + later, d, 32, &age), REPLAY_REPEAT);
        CHECK_INT(age, later);
    }
    /* replay_check keeps to the timestamp's bucket: not what ids need. */
    CHECK_INT(replay_peek(r, t + day / 2, t + day / 2, d, 32, &age), REPLAY_OK);
    /* Past the window it is new again, and forgotten it is new at once. */
    CHECK_INT(replay_seen(r, t + day + day / 3, d, 32, &age), REPLAY_OK);
    replay_forget(r, t + day + day / 3, d, 32);
    CHECK_INT(replay_seen(r, t + day + day / 3 + 5, d, 32, &age), REPLAY_OK);
    CHECK_INT(replay_seen(r, t + day + day / 3 + 9, d, 32, &age), REPLAY_REPEAT);
    replay_free(r);
}

int main(void)
{
    RUN(test_window_and_repeats);
    RUN(test_forget_keeps_the_others);
    RUN(test_seen_across_buckets);
    return CHECK_DONE();
}
