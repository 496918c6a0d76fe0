/* Unit tests for the log: a line built in place (log_begin .. log_end)
 * reads exactly as log_msg writes the same message, secrets are masked
 * in it before a cut, and a long line is cut with its mark. */
#include "check.h"
#include "core/buf.h"
#include "core/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static FILE *out;

/* What was logged since the last call, NUL-terminated (static). */
static const char *logged(void)
{
    static char text[4 * LOG_LINE_MAX + 4 * SECRET_MAX_ENCODED];
    static long at;
    log_flush();
    fflush(out);
    fseek(out, at, SEEK_SET);
    size_t n = fread(text, 1, sizeof text - 1, out);
    text[n] = '\0';
    at += (long)n;
    return text;
}

/* The line without its time ("2026-12-07T01:02:03.456Z "). */
static const char *untimed(const char *line)
{
    CHECK(strlen(line) > 25 && line[23] == 'Z' && line[24] == ' ');
    return strlen(line) > 25 ? line + 25 : line;
}

/* log_redact's masking of zapikey= and appkey= values, as it was written
 * first (a memmem pass per key): the one-pass version must mask exactly
 * the same bytes. */
static void reference_keys(char *line, size_t len)
{
    static const char *const keys[] = {"zapikey=", "appkey="};
    for (size_t k = 0; k < 2; k++) {
        size_t kl = strlen(keys[k]);
        char *p = line;
        while ((p = memmem(p, len - (size_t)(p - line), keys[k], kl))) {
            p += kl;
            while (p < line + len && *p != '&' && *p != ' ' && *p != '"' && *p != '\'' &&
                   *p != '\n' && *p != '\\')
                *p++ = '*';
        }
    }
}

static void test_keys_masked_as_before(void)
{
    static const char *const parts[] = {"zapikey", "appkey", "apikey", "=", "&", " ",   "\"",
                                        "'",       "\n",     "\\",     "a", "z", "key", "p"};
    static const char *const fixed[] = {
        "zapikey=abc",
        "appkey=abc&zapikey=def ghi",
        "zapikey=appkey=x y",
        "=zapikey=",
        "xzapikey=1",
        "apikey=2",
        "zapikey",
        "appkey=",
        "a=b appkey=c\\d",
        "zapikey==z",
    };
    unsigned seed = 17;
    for (int i = 0; i < 20000 + 10; i++) {
        char a[256], b[256];
        size_t n = 0;
        if (i < 10) {
            n = strlen(fixed[i]);
            memcpy(a, fixed[i], n);
        } else {
            int k = (int)(seed % 12) + 1;
            for (int j = 0; j < k; j++) {
                seed = seed * 1103515245u + 12345u;
                const char *t = parts[(seed >> 16) % (sizeof parts / sizeof *parts)];
                memcpy(a + n, t, strlen(t));
                n += strlen(t);
            }
        }
        memcpy(b, a, n);
        a[n] = b[n] = '\0';
        log_redact(a, n);
        reference_keys(b, n);
        if (memcmp(a, b, n) != 0) {
            CHECK_STR(a, b);
            break;
        }
    }
    char t[] = "GET /x?zapikey=s3cr3t&appkey=k3y z";
    log_redact(t, strlen(t));
    CHECK_STR(t, "GET /x?zapikey=******&appkey=*** z");
}

static void test_same_line_as_log_msg(void)
{
    static const char *const ids[] = {"abc123", NULL};
    for (int i = 0; i < 2; i++) {
        for (int level = LOG_INFO; level <= LOG_ERROR; level++) {
            log_msg((enum log_level)level, ids[i], "method=POST path=/x status=200 ms=1.250");
            char want[512];
            snprintf(want, sizeof want, "%s", untimed(logged()));
            struct buf *b = log_begin((enum log_level)level, ids[i]);
            CHECK(b != NULL);
            log_kv(b, "method", "POST", 4);
            log_kv(b, "path", "/x", 2);
            buf_adds(b, " status=");
            buf_addu(b, 200, 1);
            buf_adds(b, " ms=");
            buf_addu(b, 1, 1);
            buf_addc(b, '.');
            buf_addu(b, 250, 3);
            log_end(b);
            CHECK_STR(untimed(logged()), want);
        }
    }
    /* Nothing added: the prefix, as log_msg writes an empty message. */
    log_msg(LOG_WARN, "r1", "%s", "");
    char want[512];
    snprintf(want, sizeof want, "%s", untimed(logged()));
    log_end(log_begin(LOG_WARN, "r1"));
    CHECK_STR(untimed(logged()), want);
    CHECK_STR(want, "warn  req=r1 \n");
}

static void test_below_the_level(void)
{
    CHECK(log_begin(LOG_DEBUG, "x") == NULL);
    log_end(NULL); /* does nothing */
    CHECK_STR(logged(), "");
}

static void test_values_are_escaped_and_on_one_line(void)
{
    struct buf *b = log_begin(LOG_INFO, NULL);
    log_kv(b, "error", "a \"b\"\nc", 7);
    buf_adds(b, " raw=x\ny"); /* a newline that slipped in unescaped */
    log_end(b);
    CHECK_STR(untimed(logged()), "info  error=\"a \\\"b\\\"\\nc\" raw=x y\n");
}

static void test_secrets_masked_also_at_the_cut(void)
{
    static const char secret[] = "1001.unitLeak.0f1e2d3c4b5a6978";
    log_add_secret(secret);
    struct buf *b = log_begin(LOG_WARN, "r2");
    static const char url[] = "https://x.example/?zapikey=sekrit123&a=1";
    log_kv(b, "url", url, strlen(url));
    buf_adds(b, " tok=");
    buf_adds(b, secret);
    buf_adds(b, " pad=");
    /* The secret again, straddling the cut at LOG_LINE_MAX. */
    while (b->len < LOG_LINE_MAX - 10)
        buf_addc(b, 'x');
    buf_adds(b, secret);
    for (int i = 0; i < 100; i++)
        buf_addc(b, 'y');
    log_end(b);
    const char *line = logged();
    CHECK(strstr(line, "sekrit123") == NULL);
    CHECK(strstr(line, "zapikey=*********&a=1") != NULL);
    CHECK(strstr(line, "unitLeak") == NULL);
    CHECK(strstr(line, "1001.unit") == NULL);
    CHECK(strstr(line, "tok=******************************") != NULL);
    /* Cut: LOG_LINE_MAX - 1 bytes, the mark, the newline. */
    CHECK_INT(strlen(line), LOG_LINE_MAX - 1 + 3 + 1);
    CHECK(memcmp(line + LOG_LINE_MAX - 1, "\xe2\x80\xa6\n", 4) == 0);
    CHECK(strstr(line, "yy") == NULL);
}

static void test_past_the_room_an_append_fails(void)
{
    struct buf *b = log_begin(LOG_INFO, NULL);
    size_t big = LOG_LINE_MAX + SECRET_MAX_ENCODED;
    char *v = malloc(big);
    memset(v, 'v', big);
    CHECK_INT(buf_add(b, v, big), -1); /* refused whole */
    CHECK_INT(buf_add(b, v, 100), 0);
    log_end(b);
    const char *line = logged();
    CHECK_INT(strlen(untimed(line)), strlen("info  ") + 99 + 1);
    free(v);
}

static void test_json_lines(void)
{
    log_set_json(1);
    struct buf *b = log_begin(LOG_INFO, "r3");
    log_kv(b, "method", "POST", 4);
    buf_adds(b, " status=200 ms=2.500");
    log_kv(b, "error", "it \"broke\"", 10);
    log_end(b);
    const char *line = logged();
    CHECK(strstr(line, "\"level\":\"info\",\"request_id\":\"r3\",\"msg\":\"\","
                       "\"method\":\"POST\",\"status\":200,\"ms\":2.500,"
                       "\"error\":\"it \\\"broke\\\"\"}\n") != NULL);
    log_set_json(0);
}

static void test_addu(void)
{
    struct buf b;
    buf_init(&b, 64);
    buf_addu(&b, 0, 1);
    buf_addc(&b, ' ');
    buf_addu(&b, 7, 3);
    buf_addc(&b, ' ');
    buf_addu(&b, 18446744073709551615ULL, 1);
    buf_addc(&b, ' ');
    buf_addu(&b, 1234, 2);
    CHECK_STR(b.data, "0 007 18446744073709551615 1234");
    buf_free(&b);
    /* log_kv: a plain value that does not fit leaves the buffer as it was. */
    buf_init(&b, 16);
    CHECK_INT(log_kv(&b, "k", "v", 1), 0);
    CHECK_INT(log_kv(&b, "key", "0123456789", 10), -1);
    CHECK_STR(b.data, " k=v");
    CHECK_INT(log_kv(&b, "key", "0123456", 7), 0);
    CHECK_STR(b.data, " k=v key=0123456");
    buf_free(&b);
}

int main(void)
{
    out = tmpfile();
    if (!out)
        return 1;
    log_set_fd(fileno(out));
    log_set_level(LOG_INFO);
    test_keys_masked_as_before(); /* first: before any secret is added */
    test_same_line_as_log_msg();
    test_below_the_level();
    test_values_are_escaped_and_on_one_line();
    test_secrets_masked_also_at_the_cut();
    test_past_the_room_an_append_fails();
    test_json_lines();
    test_addu();
    fclose(out);
    printf("%d checks, %d failed\n", check_count, check_failures);
    return check_failures != 0;
}
