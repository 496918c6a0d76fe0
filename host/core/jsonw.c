/* jsonw: JSON text writing without Lua (see jsonw.h). */
#include "core/jsonw.h"

#include "core/buf.h"

#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid
 * (overlong forms, UTF-16 surrogates and code points past U+10FFFF are
 * invalid). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        return n >= 2 && (s[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
            return 0;
        if (c == 0xe0 && s[1] < 0xa0)
            return 0;
        if (c == 0xed && s[1] >= 0xa0)
            return 0;
        return 3;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
            return 0;
        if (c == 0xf0 && s[1] < 0x90)
            return 0;
        if (c == 0xf4 && s[1] >= 0x90)
            return 0;
        return 4;
    }
    return 0;
}

int jsonw_string(struct buf *b, const char *str, size_t n, int mode, size_t *bad_at)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)str;
    if (buf_addc(b, '"') < 0)
        return JSONW_FULL;
    size_t run = 0; /* start of the bytes not yet copied */
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (k) {
                i += k;
                continue;
            }
            if (mode == JSONW_STRICT) {
                if (bad_at)
                    *bad_at = i;
                return JSONW_BAD_UTF8;
            }
            if (buf_add(b, str + run, i - run) < 0 || buf_add(b, "\xef\xbf\xbd", 3) < 0)
                return JSONW_FULL;
            run = ++i;
            continue;
        }
        if (buf_add(b, str + run, i - run) < 0)
            return JSONW_FULL;
        char esc[6] = {'\\', 0, '0', '0', hex[c >> 4], hex[c & 15]};
        size_t elen = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            esc[1] = 'u';
            elen = 6;
        }
        if (buf_add(b, esc, elen) < 0)
            return JSONW_FULL;
        run = ++i;
    }
    if (buf_add(b, str + run, n - run) < 0 || buf_addc(b, '"') < 0)
        return JSONW_FULL;
    return 0;
}

char *jsonw_error_body(const char *msg, const char *req_id, size_t *len)
{
    struct buf b;
    /* Messages are short; the cap only guards against a runaway one, and
     * a cut message still leaves valid JSON below. */
    buf_init(&b, 4096);
    buf_adds(&b, "{\"error\":");
    if (jsonw_string(&b, msg, strlen(msg), JSONW_REPLACE, NULL) < 0) {
        buf_reset(&b);
        buf_adds(&b, "{\"error\":\"(message too long)\"");
    }
    buf_adds(&b, ",\"request_id\":");
    jsonw_string(&b, req_id, strlen(req_id), JSONW_REPLACE, NULL);
    buf_adds(&b, "}");
    return buf_take(&b, len);
}
