/* Unit tests for console_assets: the console's files as built into the
 * binary are byte for byte the files in host/serve/console/, with their
 * content types, and nothing else can be asked for. */
#include "check.h"
#include "serve/console_assets.h"

#include <stdlib.h>

/* The source file host/serve/console/<name>, read whole; caller frees. */
static char *source_file(const char *name, size_t *len)
{
    const char *dir = getenv("CLIQHOST_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/host/serve/console/%s", dir ? dir : ".", name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = malloc(1 << 20);
    *len = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (buf)
        buf[*len] = '\0';
    return buf;
}

static void test_files_match_the_sources(void)
{
    static const struct {
        const char *name, *type;
    } files[] = {
        {"console.html", "text/html; charset=utf-8"},
        {"console.css", "text/css; charset=utf-8"},
        {"console.js", "text/javascript; charset=utf-8"},
        {"render.js", "text/javascript; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t len = 0, want = 0;
        const char *type = NULL;
        const char *got = console_asset(files[i].name, &len, &type);
        char *src = source_file(files[i].name, &want);
        CHECK(got != NULL);
        CHECK(src != NULL);
        CHECK_STR(type, files[i].type);
        CHECK_INT(len, want);
        CHECK(got && src && len == want && memcmp(got, src, len) == 0);
        CHECK(got && got[len] == '\0'); /* usable as a C string */
        free(src);
    }
}

static void test_page_carries_the_secret_marker(void)
{
    size_t len = 0;
    const char *page = console_page(&len);
    CHECK(page != NULL && len > 0);
    CHECK_HAS(page,
              "<meta name=\"cliqhost-console-secret\" content=\"" CONSOLE_SECRET_MARKER "\">");
    CHECK_HAS(page, "/console/render.js");
    CHECK_HAS(page, "/console/console.js");
    CHECK_HAS(page, "/console/console.css");
    /* Nothing is fetched from elsewhere: no absolute URLs in the page. */
    CHECK(strstr(page, "http://") == NULL);
    CHECK(strstr(page, "https://") == NULL);
}

static void test_unknown_names_are_not_found(void)
{
    size_t len = 7;
    const char *type = "unchanged";
    CHECK(console_asset("nope.js", &len, &type) == NULL);
    CHECK_INT(len, 7);
    CHECK_STR(type, "unchanged");
    CHECK(console_asset("../console.html", NULL, NULL) == NULL);
    CHECK(console_asset("/console.html", NULL, NULL) == NULL);
    CHECK(console_asset("console/console.html", NULL, NULL) == NULL);
    CHECK(console_asset("", NULL, NULL) == NULL);
    CHECK(console_asset(NULL, NULL, NULL) == NULL);
    CHECK(console_asset("console.html", NULL, NULL) != NULL); /* NULL outs are allowed */
}

int main(void)
{
    RUN(test_files_match_the_sources);
    RUN(test_page_carries_the_secret_marker);
    RUN(test_unknown_names_are_not_found);
    return CHECK_DONE();
}
