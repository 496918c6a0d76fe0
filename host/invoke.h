/*
 * invoke: plays Cliq against a running host, for script authors.
 *
 *   cliqhost invoke command NAME [ARGUMENTS] [options]
 *   cliqhost invoke bot NAME HANDLER [TEXT] [options]
 *   cliqhost invoke function NAME HANDLER [options]
 *   ... (every handler type in reference/cliq-platform.md)
 *
 * Builds a realistic signed body, serves a one-time response_url on
 * loopback, prints the sync reply and any late reply.
 */
#ifndef CLIQHOST_INVOKE_H
#define CLIQHOST_INVOKE_H

int cli_invoke(int argc, char **argv);

#endif
