/*
 * render: a handler's reply as terminal text, for `cliqhost invoke`.
 *
 * Shows what the chat user would see, in plain text: a message's text
 * (Cliq markdown left as it is), bot name, card title and theme, slides
 * (tables with aligned columns, lists, labels, images as URLs, text),
 * buttons with their actions, suggestions and a bot context's questions;
 * banners (✔/✘), forms with each input, form modifications, a dynamic
 * select's options, widgets, link previews, extension statuses and command
 * suggestion lists. Any key it does not know is printed as compact JSON, so
 * nothing in a reply is hidden.
 */
#ifndef CLIQHOST_RENDER_H
#define CLIQHOST_RENDER_H

#include <stdio.h>

struct cJSON;

/* Writes `output` (the value of a reply's {"output": ...}; NULL is taken
 * as absent) to `out`, ending with a newline. Can't fail. */
void render_output(FILE *out, const struct cJSON *output);

#endif
