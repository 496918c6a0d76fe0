/* console_page: a placeholder page for /console (see console_page.h). */
#include "serve/console_page.h"

static const char page[] =
    "<!doctype html>\n"
    "<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    "<meta name=\"cliqhost-console-secret\" content=\"{{CONSOLE_SECRET}}\">\n"
    "<title>cliqhost console</title></head>\n"
    "<body><h1>cliqhost console</h1>\n"
    "<p>The console's page is not built in yet. Its API answers under "
    "<code>/console/api/</code> with the header <code>X-Cliqhost-Console</code> set to "
    "this page's secret.</p>\n"
    "<ul id=\"calls\"></ul>\n"
    "<script>\n"
    "const secret = document.querySelector('meta[name=cliqhost-console-secret]').content;\n"
    "const list = document.getElementById('calls');\n"
    "const es = new EventSource('/console/api/events?secret=' + encodeURIComponent(secret));\n"
    "es.addEventListener('call', (ev) => {\n"
    "  const c = JSON.parse(ev.data);\n"
    "  let li = document.getElementById('call-' + c.id);\n"
    "  if (!li) { li = document.createElement('li'); li.id = 'call-' + c.id; list.prepend(li); }\n"
    "  li.textContent = `#${c.id} ${c.kind} ${c.type || ''} ${c.name || ''} ${c.handler || ''} "
    "\\u2192 ${c.status === null ? '\\u2026' : c.status}`;\n"
    "});\n"
    "</script></body></html>\n";

const char *console_page(size_t *len)
{
    *len = sizeof page - 1;
    return page;
}
