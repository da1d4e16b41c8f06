/* commands.h - the trainer program's subcommands besides training. */
#ifndef TRAINER_TOOLS_COMMANDS_H
#define TRAINER_TOOLS_COMMANDS_H

/* `trainer predict`: the trained model on a user's pictures; argv[0] is
 * "predict". */
int predict_main(int argc, char **argv);

/* `trainer export`: the trained model in other programs' formats; argv[0]
 * is "export". */
int export_main(int argc, char **argv);

/* `trainer dataset`: describes a data set, draws it, converts it to IDX;
 * argv[0] is "dataset". */
int dataset_main(int argc, char **argv);

#endif
