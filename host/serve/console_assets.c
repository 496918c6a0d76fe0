/* console_assets: the console's files built into the binary (see
 * console_assets.h). */
#include "serve/console_assets.h"

#include <string.h>

const char *console_asset(const char *name, size_t *len, const char **content_type)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < console_files_count; i++) {
        if (strcmp(name, console_files[i].name) != 0)
            continue;
        if (len)
            *len = console_files[i].len;
        if (content_type)
            *content_type = console_files[i].content_type;
        return (const char *)console_files[i].bytes;
    }
    return NULL;
}

const char *console_page(size_t *len)
{
    return console_asset("console.html", len, NULL);
}
