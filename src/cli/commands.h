/* One function per top-level command: `ddps <name> ...`. Each parses its own
 * options (argv[0] is the command name) and returns the process exit code. */
#ifndef DDPS_CLI_COMMANDS_H
#define DDPS_CLI_COMMANDS_H

int cmd_probe(int argc, char **argv);
int cmd_probe_train(int argc, char **argv); /* `ddps probe train` (cmd_probe_train.c) */
int cmd_bench(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_select(int argc, char **argv);
int cmd_distill(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_merge(int argc, char **argv);
int cmd_world_eval(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);

#endif
