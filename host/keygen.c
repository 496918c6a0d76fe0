/* keygen: a development key pair (see keygen.h). */
#include "keygen.h"

#include <stdio.h>

int cli_keygen(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cliqhost keygen: not built yet\n");
    return 2;
}
