/* options.h - the trainer's command line: its settings, read and checked,
 * and those a resumed run takes from its state. */
#ifndef TRAINER_TOOLS_OPTIONS_H
#define TRAINER_TOOLS_OPTIONS_H

#include "callbacks.h"
#include "mlp.h"
#include "model.h"
#include "optimizer.h"
#include "state.h"

typedef struct {
    const char *invoked;  /* argv[0]: the program as the user started it */
    const char *data_dir; /* NULL: data/mnist here, else in the source tree */
    const char *test_dir; /* --test-data, or NULL */
    const char *class_names; /* --class-names FILE, or NULL */
    int image_rows, image_cols; /* --image-size, or 0 */
    int image_channels;   /* --color: 1 or 3, or 0 */
    const char *out_dir;
    const char *load;
    const char *resume;   /* a run's directory to continue */
    unsigned given;       /* GIVEN_* bits: settings set on the command line */
    const char *hidden_text;
    const char *layers_text; /* --layers or a preset's name; NULL: dense layers from --hidden */
    const tr_model_preset *preset; /* --model other than mlp, sized to the data's classes */
    int hidden[MLP_MAX_LAYERS];
    int n_hidden;
    int plots;
    int epochs;
    int batch_size;
    int threads;
    int shards;
    double lr;
    tr_optimizer_hparams opt; /* the optimizer, its settings and its schedule */
    float label_smoothing;
    double validation_split;
    unsigned long long seed;
    tr_callback_config callbacks;
} options;

/* Settings a resumed run takes from its training.state, not from flags. */
enum {
    GIVEN_OUT = 1, GIVEN_HIDDEN = 2, GIVEN_BATCH = 4, GIVEN_LR = 8, GIVEN_VSPLIT = 16,
    GIVEN_SEED = 32, GIVEN_SHARDS = 64, GIVEN_LOAD = 128, GIVEN_EPOCHS = 256, GIVEN_DATA = 512,
    GIVEN_THREADS = 1024, GIVEN_CALLBACKS = 2048, GIVEN_LAYERS = 4096, GIVEN_OPTIMIZER = 8192,
    GIVEN_PICTURES = 16384, GIVEN_TEST_DATA = 32768
};

/* Reads argv into o: 0 to run, 1 when --help or --version was served, -1 on
 * a bad flag (said on stderr). */
int options_parse(options *o, int argc, char **argv);

/* The settings a resumed run takes from its state st (whose model is m),
 * read from state_path: its layers, batch, shards, rate, optimizer, split,
 * seed, callbacks, output directory and, unless given, its epochs and data. */
int options_take_state(options *o, const tr_train_state *st, const tr_model *m,
                       const char *state_path, tr_error *err);

/* The threads that run: --threads, at most one per shard. */
int options_threads(const options *o);

/* The data directory: --data, else tr_dataset_default_dir(). */
const char *options_data_dir(const options *o);

#endif
