/*
 * render_dump CASES.json: the terminal renderer (host/cliq/render.c, what
 * `cliqhost invoke` prints) over each case of the console's render fixtures
 * (tests/browser/fixtures/render-cases.json), so tests/browser/test_render.js
 * can check that the terminal and the page show the same things. Each case
 * is printed after a line "=== <name>".
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#include "cliq/render.h"
#include "core/buf.h"

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: render_dump CASES.json\n");
        return 2;
    }
    char err[256];
    size_t len;
    char *text = buf_read_file(argv[1], 16u << 20, &len, err, sizeof err);
    if (!text) {
        fprintf(stderr, "render_dump: %s\n", err);
        return 2;
    }
    cJSON *cases = cJSON_Parse(text);
    free(text);
    if (!cJSON_IsArray(cases)) {
        fprintf(stderr, "render_dump: %s is not a JSON array of cases\n", argv[1]);
        cJSON_Delete(cases);
        return 2;
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, cases)
    {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(c, "name");
        const cJSON *body = cJSON_GetObjectItemCaseSensitive(c, "body");
        printf("=== %s\n", cJSON_IsString(name) ? name->valuestring : "?");
        const cJSON *output =
            cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "output") : NULL;
        render_output(stdout, output);
    }
    cJSON_Delete(cases);
    return 0;
}
