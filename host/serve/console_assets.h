/* console_assets: the console's page, styles and scripts, built into the
 * binary.
 *
 * The files under host/serve/console/ are turned into C arrays at build
 * time (cmake/embed_console.cmake), so `/console` works offline and with
 * nothing installed next to the binary. The page carries the marker
 * {{CONSOLE_SECRET}} (in a <meta> tag) that the server replaces with the
 * per-process secret before sending it. */
#ifndef CLIQHOST_SERVE_CONSOLE_ASSETS_H
#define CLIQHOST_SERVE_CONSOLE_ASSETS_H

#include <stddef.h>

/* One built-in file. The table console_files[] (console_files_count
 * entries) is generated at build time (console_data.c in the build tree);
 * read it through console_asset(). */
struct console_file {
    const char *name;
    const unsigned char *bytes;
    size_t len;
    const char *content_type;
};

extern const struct console_file console_files[];
extern const size_t console_files_count;

/* The marker in console.html that the server replaces with the secret. */
#define CONSOLE_SECRET_MARKER "{{CONSOLE_SECRET}}"

/* The file `name` ("console.html", "console.css", "console.js",
 * "render.js"): its bytes (static, never freed; followed by a NUL not
 * counted in *len), its length in *len and its Content-Type in
 * *content_type (either may be NULL). NULL when there is no such file: a
 * name with a '/' or "..", or any name not built in, is never found. */
const char *console_asset(const char *name, size_t *len, const char **content_type);

/* The page itself: console_asset("console.html", len, NULL). */
const char *console_page(size_t *len);

#endif
