/*
 * schedcli: the operator's view of schedules, from a running host.
 *
 *   cliqhost schedules [--url URL | --config FILE] [--json]
 *       each schedule with when it runs, its next run, and its last run
 *       and outcome as the store knows it (GET /status, loopback)
 *   cliqhost invoke schedule NAME [--url URL | --config FILE] [--json]
 *       runs one now on that host (POST /schedules/NAME/run) and prints
 *       its outcome: exit 0 ok, 1 refused, 3 unreachable, 5 the run failed
 */
#ifndef CLIQHOST_SCHEDCLI_H
#define CLIQHOST_SCHEDCLI_H

int cli_schedules(int argc, char **argv);
int cli_invoke_schedule(int argc, char **argv);

#endif
