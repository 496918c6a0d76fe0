/* invoke: plays Cliq against a running host (see invoke.h). */
#include "invoke.h"

#include <stdio.h>

int cli_invoke(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "cliqhost invoke: not built yet\n");
    return 2;
}
