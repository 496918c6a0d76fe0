/*
 * keygen: a development key pair, so `serve` and `invoke` can play the two
 * sides of Cliq's signature without a Cliq account.
 *
 *   cliqhost keygen DIR
 */
#ifndef CLIQHOST_KEYGEN_H
#define CLIQHOST_KEYGEN_H

int cli_keygen(int argc, char **argv);

#endif
