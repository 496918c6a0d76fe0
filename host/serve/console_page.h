/*
 * console_page: the bytes of GET /console (issue 16). The page carries the
 * process's console secret where it says {{CONSOLE_SECRET}}; the server
 * substitutes it. This file holds a placeholder until the console's own
 * page (HTML, CSS and JavaScript, built in) replaces it.
 */
#ifndef CLIQHOST_CONSOLE_PAGE_H
#define CLIQHOST_CONSOLE_PAGE_H

#include <stddef.h>

/* The page with its secret marker; static storage. */
const char *console_page(size_t *len);

#endif
