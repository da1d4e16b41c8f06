/* predict.h - `trainer predict`, the trained model on a user's pictures. */
#ifndef TRAINER_TOOLS_PREDICT_H
#define TRAINER_TOOLS_PREDICT_H

/* The subcommand's main: argv[0] is "predict". */
int predict_main(int argc, char **argv);

#endif
