/*
 * invoke: plays Cliq against a running host, for script authors.
 *
 *   cliqhost invoke command NAME [HANDLER] [TEXT] [options]
 *   cliqhost invoke bot NAME HANDLER [TEXT] [options]
 *   cliqhost invoke function NAME HANDLER [TEXT] [options]
 *   ... (every handler type of docs/cliq-formats.md §2; see --help)
 *   cliqhost invoke --body FILE [options]
 *
 * Builds the body Cliq would send (callbody.h), signs it with a PEM private
 * key (RSA PKCS#1 v1.5 SHA-256, like Cliq), serves its response_url once on
 * an ephemeral loopback port, POSTs it with libcurl, and prints the reply
 * and whatever reached response_url (a req:respond() reply, or the late
 * result the X-Cliqhost-Late header announces), as text (render.h) or as
 * received (--json). Exit status: 0 answered 200 (and any announced late
 * reply came), 1 an error status or a reply not shaped {"output": ...},
 * 2 nothing sent (bad usage, no key, unreadable files), 3 the host not
 * reachable or silent past --timeout, 4 the late reply did not come
 * within --wait.
 */
#ifndef CLIQHOST_INVOKE_H
#define CLIQHOST_INVOKE_H

#include <stddef.h>

int cli_invoke(int argc, char **argv);

/* The base URL ("http://127.0.0.1:8080") of the host the config file
 * `config` describes (an address on every interface is called on
 * loopback), and its callback_path in `path` (may be NULL). Returns 0, or
 * -1 with the reason in err. */
int invoke_host_url(const char *config, char *base, size_t n, char *path, size_t pathlen, char *err,
                    size_t errlen);

#endif
