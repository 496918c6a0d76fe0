/*
 * cli: the operators' commands around the outbox.
 *
 *   cliqhost post channel NAME [TEXT] [--token NAME] [--bot BOT] [--json FILE|-] [--wait S]
 *   cliqhost post bot NAME [TEXT] [--users ID,ID | --broadcast] [...]
 *   cliqhost tokens
 *   cliqhost outbox [list | retry ID | drop ID]
 *
 * Each also takes the settings' flags (--config, --data-dir, --cliq-api).
 * `post` exits 0 when delivered, 1 on a final failure, 75 (EX_TEMPFAIL)
 * when it is still queued after --wait seconds (the host, or the next
 * `post`, delivers it), 2 on a usage error: fit for cron and CI.
 */
#ifndef CLIQHOST_CLI_H
#define CLIQHOST_CLI_H

int cli_post(int argc, char **argv);
int cli_tokens(int argc, char **argv);
int cli_outbox(int argc, char **argv);

#endif
