/* trainer - trains a dense classifier on MNIST-format data, Keras-style.
 *
 * This file holds only the command line, the console and the order of work;
 * everything else is in the library. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include "ckpt.h"
#include "cli.h"
#include "dataset.h"
#include "fileio.h"
#include "group.h"
#include "model.h"
#include "plots.h"
#include "commands.h"
#include "run.h"
#include "state.h"
#include "train.h"

#define EXIT_USAGE 2
#define MAX_THREADS 256

typedef struct {
    const char *data_dir; /* NULL: data/mnist here, else in the source tree */
    const char *out_dir;
    const char *load;
    const char *resume;   /* a run's directory to continue */
    unsigned given;       /* GIVEN_* bits: settings set on the command line */
    const char *hidden_text;
    const char *layers_text; /* --layers or a preset's name; NULL: dense layers from --hidden */
    const model_preset *preset; /* --model other than mlp, sized to the data's classes */
    int hidden[MLP_MAX_LAYERS];
    int n_hidden;
    int plots;
    int epochs;
    int batch_size;
    int threads;
    int shards;
    double lr;
    double validation_split;
    unsigned long long seed;
    callback_config callbacks;
} options;

/* Settings a resumed run takes from its training.state, not from flags. */
enum {
    GIVEN_OUT = 1, GIVEN_HIDDEN = 2, GIVEN_BATCH = 4, GIVEN_LR = 8, GIVEN_VSPLIT = 16,
    GIVEN_SEED = 32, GIVEN_SHARDS = 64, GIVEN_LOAD = 128, GIVEN_EPOCHS = 256, GIVEN_DATA = 512,
    GIVEN_THREADS = 1024, GIVEN_CALLBACKS = 2048, GIVEN_LAYERS = 4096
};


static void usage(FILE *f)
{
    fprintf(f,
            "Usage: trainer [OPTION]...\n"
            "       trainer predict [--model FILE] IMAGE...   (see trainer predict --help)\n"
            "       trainer export [--model FILE] [--onnx OUT] [--safetensors OUT]\n"
            "Train an image classifier on MNIST-format data (Keras' Sequential + Adam),\n"
            "or classify pictures with a trained one, or export it.\n"
            "\n"
            "  --data DIR              the four IDX files, plain or .gz (default: data/mnist\n"
            "                          here, else %s/data/mnist)\n"
            "  --out DIR               where history.csv, model.ckpt, training.state and\n"
            "                          the pictures go, created if missing (default: .)\n"
            "  --hidden LIST           hidden layer widths (default: 128,32; '' for none)\n"
            "  --model NAME            mlp (the notebook's, the default) or convnet (Keras'\n"
            "                          mnist_convnet: batch 128, validation split 0.1 and\n"
            "                          15 epochs unless given)\n"
            "  --layers SPEC           any stack, Keras' layers by name, e.g.\n"
            "                          conv2d(32,3,relu),maxpool2d(2),flatten,\n"
            "                          dropout(0.5),dense(10,softmax); also\n"
            "                          conv2d(F,K,same), dense(N,relu) (see the README)\n"
            "  --epochs N              passes over the training set (default: 25; 0 only\n"
            "                          evaluates)\n"
            "  --batch-size N          samples per Adam step (default: 32)\n"
            "  --lr X                  Adam learning rate (default: 0.001)\n"
            "  --validation-split X    last fraction of the training file held out for\n"
            "                          validation, 0 <= X < 1 (default: 0.2)\n"
            "  --seed N                seed of the weights and the shuffles (default: 0)\n"
            "  --threads N             OpenMP threads (default: the %d cores available);\n"
            "                          never more run than there are shards\n"
            "  --shards N              parts each batch is split into, each with its own\n"
            "                          gradient buffer (default: the cores available);\n"
            "                          results depend on it, never on --threads\n"
            "  --load FILE             start from a saved model.ckpt (its layer sizes win)\n"
            "  --resume DIR            continue the run whose outputs are in DIR, exactly\n"
            "                          as if it had not stopped (with --data, --threads,\n"
            "                          --epochs to extend it, --no-plots)\n"
            "  --no-plots              do not write samples.png, curves.png, predictions.png\n"
            "\n"
            "Keras' callbacks (each epoch's figures decide; see the README for the rules):\n"
            "  --early-stopping N      stop once N epochs in a row have not improved, and\n"
            "                          keep the best epoch's weights (EarlyStopping)\n"
            "  --monitor NAME          the figure the callbacks watch: val_loss (default),\n"
            "                          val_accuracy, loss or accuracy\n"
            "  --min-delta X           improving means beating the best by more than |X|\n"
            "                          (default: 0)\n"
            "  --no-restore-best       keep the last epoch's weights, not the best's\n"
            "  --save-best             write model.best.ckpt whenever the watched figure\n"
            "                          improves (ModelCheckpoint(save_best_only=True))\n"
            "  --reduce-lr-on-plateau F  multiply the rate by F (0 < F < 1) once\n"
            "                          --lr-patience epochs have not improved by\n"
            "                          --lr-min-delta (ReduceLROnPlateau)\n"
            "  --lr-patience N         (default: 10)\n"
            "  --lr-min-delta X        (default: 0.0001)\n"
            "  --lr-cooldown N         epochs to wait after a change (default: 0)\n"
            "  --min-lr X              the rate's floor (default: 0)\n"
            "  --help                  show this help\n"
            "  --version               show the version\n"
            "\n"
            "Ctrl-C (SIGINT), SIGTERM or SIGHUP finishes the current step, saves the\n"
            "state and exits; a second one exits at once.\n"
            "\n"
            "Exit status: 0 on success, 1 for a data, checkpoint or output problem,\n"
            "2 for a bad command line, 130, 143 or 129 when interrupted (128 + the signal).\n",
            TRAINER_SOURCE_DIR, train_cores());
}

enum {
    OPT_DATA = 256, OPT_OUT, OPT_HIDDEN, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_VSPLIT,
    OPT_SEED, OPT_THREADS, OPT_SHARDS, OPT_LOAD, OPT_RESUME, OPT_NO_PLOTS, OPT_HELP, OPT_VERSION,
    OPT_EARLY, OPT_MONITOR, OPT_MIN_DELTA, OPT_NO_RESTORE, OPT_SAVE_BEST, OPT_REDUCE_LR,
    OPT_LR_PATIENCE, OPT_LR_MIN_DELTA, OPT_LR_COOLDOWN, OPT_MIN_LR, OPT_MODEL, OPT_LAYERS
};

/* The callback flags; they set o->callbacks.  Returns 1 when c is not one. */
static int parse_callback_flag(options *o, int c, const char *arg)
{
    callback_config *cb = &o->callbacks;
    long v;
    tr_error err;
    switch (c) {
    case OPT_EARLY:
        if (cli_long("--early-stopping", arg, 0, 1000000, &v)) return -1;
        cb->early_stopping = 1;
        cb->patience = (int)v;
        break;
    case OPT_MONITOR:
        if (monitor_parse(arg, &cb->monitor, &err)) {
            fprintf(stderr, "trainer: %s (see --help)\n", err.msg);
            return -1;
        }
        break;
    case OPT_MIN_DELTA:
        return cli_double("--min-delta", arg, -1e9, 0, 1e9, 0, &cb->min_delta);
    case OPT_NO_RESTORE: cb->restore_best = 0; break;
    case OPT_SAVE_BEST: cb->save_best = 1; break;
    case OPT_REDUCE_LR:
        if (cli_double("--reduce-lr-on-plateau", arg, 0.0, 1, 1.0, 1, &cb->factor))
            return -1;
        cb->reduce_lr = 1;
        break;
    case OPT_LR_PATIENCE:
        if (cli_long("--lr-patience", arg, 0, 1000000, &v)) return -1;
        cb->lr_patience = (int)v;
        break;
    case OPT_LR_MIN_DELTA:
        return cli_double("--lr-min-delta", arg, -1e9, 0, 1e9, 0, &cb->lr_min_delta);
    case OPT_LR_COOLDOWN:
        if (cli_long("--lr-cooldown", arg, 0, 1000000, &v)) return -1;
        cb->cooldown = (int)v;
        break;
    case OPT_MIN_LR:
        return cli_double("--min-lr", arg, 0.0, 0, 1e6, 0, &cb->min_lr);
    default:
        return 1;
    }
    return 0;
}

/* The CALLBACK_GIVEN_* bit of a callback flag, 0 for the others. */
static unsigned callback_given(int c)
{
    switch (c) {
    case OPT_MONITOR: return CALLBACK_GIVEN_MONITOR;
    case OPT_MIN_DELTA: return CALLBACK_GIVEN_MIN_DELTA;
    case OPT_NO_RESTORE: return CALLBACK_GIVEN_NO_RESTORE;
    case OPT_LR_PATIENCE: return CALLBACK_GIVEN_LR_PATIENCE;
    case OPT_LR_MIN_DELTA: return CALLBACK_GIVEN_LR_MIN_DELTA;
    case OPT_LR_COOLDOWN: return CALLBACK_GIVEN_COOLDOWN;
    case OPT_MIN_LR: return CALLBACK_GIVEN_MIN_LR;
    default: return 0;
    }
}

/* Returns 0 to run, 1 when --help or --version was served, -1 on a bad flag. */
/* The cores of this machine, shared by the group's processes on it. */
static int default_threads(void)
{
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const int here = local && atoi(local) > 0 ? atoi(local) : 1;
    const int per = train_cores() / here;
    return per > 0 ? per : 1;
}

static int parse_options(options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, OPT_DATA},
        {"out", required_argument, NULL, OPT_OUT},
        {"hidden", required_argument, NULL, OPT_HIDDEN},
        {"epochs", required_argument, NULL, OPT_EPOCHS},
        {"batch-size", required_argument, NULL, OPT_BATCH},
        {"lr", required_argument, NULL, OPT_LR},
        {"validation-split", required_argument, NULL, OPT_VSPLIT},
        {"seed", required_argument, NULL, OPT_SEED},
        {"threads", required_argument, NULL, OPT_THREADS},
        {"shards", required_argument, NULL, OPT_SHARDS},
        {"load", required_argument, NULL, OPT_LOAD},
        {"resume", required_argument, NULL, OPT_RESUME},
        {"no-plots", no_argument, NULL, OPT_NO_PLOTS},
        {"early-stopping", required_argument, NULL, OPT_EARLY},
        {"monitor", required_argument, NULL, OPT_MONITOR},
        {"min-delta", required_argument, NULL, OPT_MIN_DELTA},
        {"no-restore-best", no_argument, NULL, OPT_NO_RESTORE},
        {"save-best", no_argument, NULL, OPT_SAVE_BEST},
        {"reduce-lr-on-plateau", required_argument, NULL, OPT_REDUCE_LR},
        {"lr-patience", required_argument, NULL, OPT_LR_PATIENCE},
        {"lr-min-delta", required_argument, NULL, OPT_LR_MIN_DELTA},
        {"lr-cooldown", required_argument, NULL, OPT_LR_COOLDOWN},
        {"min-lr", required_argument, NULL, OPT_MIN_LR},
        {"model", required_argument, NULL, OPT_MODEL},
        {"layers", required_argument, NULL, OPT_LAYERS},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    *o = (options){.out_dir = ".", .hidden_text = "128,32", .epochs = 25,
                   .batch_size = 32, .threads = default_threads(),
                   .shards = default_threads() * group_size(), .lr = 1e-3,
                   .validation_split = 0.2, .seed = 0, .plots = 1,
                   .callbacks = callback_defaults()};
    opterr = 0;
    int c;
    long v;
    unsigned callback_flags = 0; /* CALLBACK_GIVEN_* */
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *flag = argv[optind - 1];
        const int cb = parse_callback_flag(o, c, optarg);
        if (cb < 0)
            return -1;
        if (cb == 0) {
            callback_flags |= callback_given(c);
            o->given |= GIVEN_CALLBACKS;
            continue;
        }
        switch (c) {
        case OPT_DATA: o->data_dir = optarg; o->given |= GIVEN_DATA; break;
        case OPT_OUT: o->out_dir = optarg; o->given |= GIVEN_OUT; break;
        case OPT_LOAD: o->load = optarg; o->given |= GIVEN_LOAD; break;
        case OPT_RESUME:
            if (optarg[0] == '\0')
                return cli_bad_flag("--resume", optarg, "expected the directory of a run");
            o->resume = optarg;
            break;
        case OPT_NO_PLOTS: o->plots = 0; break;
        case OPT_HIDDEN:
            o->hidden_text = optarg;
            o->given |= GIVEN_HIDDEN;
            break;
        case OPT_MODEL: {
            const model_preset *p;
            tr_error why;
            if (model_preset_find(optarg, &p, &why))
                return cli_bad_flag("--model", optarg, "expected mlp or convnet");
            /* mlp: the dense layers of --hidden, whose default it is. */
            o->preset = strcmp(p->name, "mlp") ? p : NULL;
            o->layers_text = o->preset ? p->name : NULL;
            o->given |= GIVEN_LAYERS;
            break;
        }
        case OPT_LAYERS:
            o->layers_text = optarg;
            o->preset = NULL;
            o->given |= GIVEN_LAYERS;
            break;
        case OPT_EPOCHS:
            if (cli_long("--epochs", optarg, 0, 1000000, &v)) return -1;
            o->epochs = (int)v;
            o->given |= GIVEN_EPOCHS;
            break;
        case OPT_BATCH:
            if (cli_long("--batch-size", optarg, 1, TRAIN_MAX_BATCH, &v)) return -1;
            o->batch_size = (int)v;
            o->given |= GIVEN_BATCH;
            break;
        case OPT_THREADS:
            if (cli_long("--threads", optarg, 1, MAX_THREADS, &v)) return -1;
            o->threads = (int)v;
            o->given |= GIVEN_THREADS;
            break;
        case OPT_SHARDS:
            if (cli_long("--shards", optarg, 1, TRAIN_MAX_SHARDS, &v)) return -1;
            o->shards = (int)v;
            o->given |= GIVEN_SHARDS;
            break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            unsigned long long s = strtoull(optarg, &end, 10);
            if (end == optarg || *end != '\0' || errno || optarg[0] == '-')
                return cli_bad_flag("--seed", optarg,
                                "expected a whole number from 0 to 18446744073709551615");
            o->seed = s;
            o->given |= GIVEN_SEED;
            break;
        }
        case OPT_LR:
            if (cli_double("--lr", optarg, 0.0, 1, 1e6, 0, &o->lr)) return -1;
            /* Adam computes in floats: a rate that rounds to 0 there is none. */
            if ((float)o->lr == 0.0f)
                return cli_bad_flag("--lr", optarg, "too small for a float (1e-38 and up)");
            o->given |= GIVEN_LR;
            break;
        case OPT_VSPLIT:
            if (cli_double("--validation-split", optarg, 0.0, 0, 1.0, 1,
                             &o->validation_split))
                return -1;
            o->given |= GIVEN_VSPLIT;
            break;
        case OPT_HELP: usage(stdout); return 1;
        case OPT_VERSION: printf("trainer %s\n", TRAINER_VERSION); return 1;
        case '?':
        default:
            if (optopt)
                fprintf(stderr, "trainer: %s needs a value (see --help)\n", flag);
            else
                fprintf(stderr, "trainer: unknown option '%s' (see --help)\n", flag);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "trainer: unexpected argument '%s' (see --help)\n", argv[optind]);
        return -1;
    }
    const unsigned fixed = GIVEN_OUT | GIVEN_HIDDEN | GIVEN_BATCH | GIVEN_LR | GIVEN_VSPLIT |
                           GIVEN_SEED | GIVEN_SHARDS | GIVEN_LOAD | GIVEN_CALLBACKS |
                           GIVEN_LAYERS;
    if (o->resume && (o->given & fixed)) {
        fprintf(stderr, "trainer: --resume continues a run with its own settings; only "
                "--data, --threads, --epochs and --no-plots may go with it (see --help)\n");
        return -1;
    }
    tr_error err;
    if (mlp_parse_hidden(o->hidden_text, o->hidden, &o->n_hidden, &err)) {
        fprintf(stderr, "trainer: %s (see --help)\n", err.msg);
        return -1;
    }
    if (o->layers_text && (o->given & GIVEN_HIDDEN)) {
        fprintf(stderr, "trainer: --hidden sets the dense layers of --model mlp; it does not "
                "go with --layers or --model convnet (see --help)\n");
        return -1;
    }
    layer layers[MODEL_MAX_LAYERS];
    int n;
    if (o->layers_text && !o->preset && model_parse_layers(o->layers_text, layers, &n, &err)) {
        fprintf(stderr, "trainer: --layers: %s (see --help)\n", err.msg);
        return -1;
    }
    /* A preset trains as its example does, unless told otherwise. */
    if (o->preset) {
        if (!(o->given & GIVEN_BATCH))
            o->batch_size = o->preset->batch_size;
        if (!(o->given & GIVEN_VSPLIT))
            o->validation_split = o->preset->validation_split;
        if (!(o->given & GIVEN_EPOCHS))
            o->epochs = o->preset->epochs;
    }
    if (!o->resume &&
        callback_config_check(&o->callbacks, callback_flags, o->validation_split, &err)) {
        fprintf(stderr, "trainer: %s (see --help)\n", err.msg);
        return -1;
    }
    return 0;
}

static int run_threads(const options *o)
{
    return train_threads_used(o->threads, o->shards);
}

/* The data directory: --data, else data/mnist here, else in the source tree. */
static const char *data_dir(const options *o)
{
    return o->data_dir ? o->data_dir : dataset_default_dir();
}

/* The console's progress bar, Keras' way: a counter right-aligned to the
 * batch count, a bar, the ETA while running and the time per step at the end.
 * A line is never wider than the terminal, so redrawing it with \r never
 * leaves a wrapped copy behind: the bar shrinks (or goes) to fit, and the
 * end-of-epoch line is cut into lines at its " - " separators. */
typedef struct {
    int tty;
    int cols;       /* the terminal's width, re-read after SIGWINCH */
    double start, last_draw;
    monitor watched; /* what the callbacks watch, for their lines */
} progress_state;

static volatile sig_atomic_t resized = 1;

static void on_resize(int sig)
{
    (void)sig;
    resized = 1;
}

static int terminal_cols(progress_state *p)
{
    if (resized) {
        resized = 0;
        struct winsize ws;
        p->cols = ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 ? ws.ws_col : 80;
    }
    return p->cols;
}

/* "  37/1500 [=====>........]" into buf, the bar as wide as fits in room
 * columns (30 at most; left out below 6). */
static void format_counter(char *buf, size_t size, long batch, long n_batches, int room)
{
    char total[24];
    const int digits = snprintf(total, sizeof total, "%ld", n_batches);
    int len = snprintf(buf, size, "%*ld/%s", digits, batch, total);
    int width = room - len - 3;
    width = width > 30 ? 30 : width;
    if (width < 6 || (size_t)(len + width + 3) >= size)
        return;
    const int filled = (int)((long)width * batch / n_batches);
    buf[len++] = ' ';
    buf[len++] = '[';
    for (int i = 0; i < width; i++)
        buf[len++] = i < filled ? '=' : (i == filled ? '>' : '.');
    buf[len++] = ']';
    buf[len] = '\0';
}

/* Writes the fields (the first one the counter) on as few lines as fit in
 * cols - 1 columns, joined by " - ", each line cleared to its end. */
static void print_fields(const char *const *fields, int n, int cols)
{
    const int room = cols - 1;
    int at = 0;
    for (int i = 0; i < n; i++) {
        const int len = (int)strlen(fields[i]);
        if (i > 0 && at + 3 + len > room) {
            fputs("\033[K\n", stdout);
            at = 0;
        } else if (i > 0) {
            fputs(" - ", stdout);
            at += 3;
        }
        const int fit = len < room - at ? len : room - at;
        fwrite(fields[i], 1, (size_t)(fit > 0 ? fit : 0), stdout);
        at += fit;
    }
    fputs("\033[K", stdout);
}

static void draw_progress(void *ctx, long batch, long n_batches, double loss, double acc)
{
    progress_state *p = ctx;
    double t = run_clock();
    if (batch != n_batches && t - p->last_draw < 0.1)
        return;
    p->last_draw = t;
    const int cols = terminal_cols(p);
    char counter[96], eta[32], l[32], a[32];
    snprintf(eta, sizeof eta, "ETA: %.0fs", (t - p->start) / (double)batch *
                                                (double)(n_batches - batch));
    snprintf(l, sizeof l, "loss: %.4f", loss);
    snprintf(a, sizeof a, "accuracy: %.4f", acc);
    const char *fields[] = {counter, eta, l, a};
    /* The bar narrows to leave room for the figures, and gives way to the
     * ETA and the loss on a narrow terminal. */
    for (int keep = 4, extra; keep >= 2; keep--) {
        extra = 0;
        for (int i = 1; i < keep; i++)
            extra += 3 + (int)strlen(fields[i]);
        format_counter(counter, sizeof counter, batch, n_batches, cols - 1 - extra);
        if (strchr(counter, '['))
            break;
    }
    /* One line only: the fields that fit, the others left out. */
    int n = 1, width = (int)strlen(counter);
    while (n < 4 && width + 3 + (int)strlen(fields[n]) <= cols - 1)
        width += 3 + (int)strlen(fields[n++]);
    fputc('\r', stdout);
    print_fields(fields, n, cols);
    fflush(stdout);
}

/* The epoch's last line on a terminal: its figures, Keras' way. */
static void print_epoch_tty(progress_state *p, long n_batches, double seconds,
                            const epoch_stats *st, int has_val)
{
    const int cols = terminal_cols(p);
    char counter[96], time_[48], l[32], a[32], vl[32], va[32];
    format_counter(counter, sizeof counter, n_batches, n_batches, cols - 1);
    snprintf(time_, sizeof time_, "%.2fs %.0fus/step", seconds,
             1e6 * seconds / (double)n_batches);
    snprintf(l, sizeof l, "loss: %.4f", st->loss);
    snprintf(a, sizeof a, "accuracy: %.4f", st->accuracy);
    snprintf(vl, sizeof vl, "val_loss: %.4f", st->val_loss);
    snprintf(va, sizeof va, "val_accuracy: %.4f", st->val_accuracy);
    const char *fields[] = {counter, time_, l, a, vl, va};
    fputc('\r', stdout);
    print_fields(fields, has_val ? 6 : 4, cols);
    fputc('\n', stdout);
}

/* Everything the program holds, released in one place. */
typedef struct {
    dataset all, train, val, test;
    char data_dir[PATH_MAX];
    model model;
    run *run;
    evaluator *eval;           /* the test set's, when there is no run */
    train_state saved;         /* when resuming: the state read */
    int bad_layers;            /* --layers does not fit the data: a command-line error */
    float *saved_m, *saved_v;  /* when resuming: Adam's moments read */
} program;

static void program_free(program *r)
{
    run_free(r->run);
    evaluator_free(r->eval);
    model_free(&r->model);
    dataset_free(&r->all);
    dataset_free(&r->test);
    free(r->saved.history);
    model_buffer_free(r->saved.best_weights);
    model_buffer_free(r->saved_m);
    model_buffer_free(r->saved_v);
}

/* The first SIGINT, SIGTERM or SIGHUP asks training to stop after its current step;
 * a second one ends the program at once (the files written so far are whole:
 * every write goes through a temporary file). */
static volatile sig_atomic_t stop_signal;
static volatile sig_atomic_t unblock_output; /* under mpirun */

static void on_signal(int sig)
{
    /* mpirun, stopping the job, no longer reads the processes' output: a
     * write into a full pipe would then wait until mpirun kills the
     * process, and the state would never be saved.  The writes fail
     * instead (fcntl is async-signal-safe). */
    if (unblock_output)
        for (int fd = STDOUT_FILENO; fd <= STDERR_FILENO; fd++)
            fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    if (stop_signal) {
        static const char msg[] = "\ntrainer: second signal, exiting at once; the last "
                                  "saved state is kept\n";
        ssize_t ignored = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)ignored;
        _exit(128 + sig);
    }
    stop_signal = sig;
}

/* Calls handler on sig; SA_RESTART, since the files being written when a
 * signal comes must still be written. */
static void handle_signal(int sig, void (*handler)(int))
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = handler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, NULL);
}

static void catch_signals(void)
{
    handle_signal(SIGINT, on_signal);
    handle_signal(SIGTERM, on_signal);
    /* A closed terminal or a dropped ssh session: the run is saved as for
     * SIGTERM, not lost; but a run started with SIGHUP ignored (nohup) goes
     * on, as its user asked. */
    struct sigaction hup;
    if (sigaction(SIGHUP, NULL, &hup) != 0 || hup.sa_handler != SIG_IGN)
        handle_signal(SIGHUP, on_signal);
    /* Nor may a write into a pipe that mpirun has closed end the process. */
    if (group_size() > 1) {
        unblock_output = 1;
        handle_signal(SIGPIPE, SIG_IGN);
    }
}

/* Takes a resumed run's settings from DIR/training.state, with its model and
 * Adam's moments; --data, --threads, --epochs and --no-plots may still be given. */
static int read_saved_run(program *r, options *o, char *state_path, size_t size,
                          tr_error *err)
{
    if (snprintf(state_path, size, "%s/training.state", o->resume) >= (int)size)
        return error_set(err, "%s: path too long", o->resume);
    train_state *st = &r->saved;
    if (state_load(st, &r->model, &r->saved_m, &r->saved_v, state_path, err))
        return -1;
    o->out_dir = o->resume;
    mlp_shape shape;
    tr_error why;
    if (model_mlp_shape(&r->model, &shape, &why) == 0) {
        o->n_hidden = shape.n_layers - 1;
        for (int l = 0; l < o->n_hidden; l++)
            o->hidden[l] = shape.sizes[l + 1];
    }
    o->batch_size = st->batch_size;
    o->shards = st->shards;
    o->lr = st->lr;
    o->validation_split = st->validation_split;
    o->seed = st->seed;
    o->callbacks = st->callbacks;
    if (!(o->given & GIVEN_EPOCHS))
        o->epochs = st->epochs;
    else if (o->epochs < st->epoch - 1)
        return error_set(err, "--epochs %d: the run in %s has done %d epochs already",
                         o->epochs, o->resume, st->epoch - 1);
    if (!(o->given & GIVEN_DATA)) {
        if (!st->data_dir[0])
            return error_set(err, "%s: the state names no data directory: give it with "
                             "--data DIR", state_path);
        o->data_dir = st->data_dir;
    }
    return 0;
}

/* Locks the directory of the run that --resume continues (file_lock_dir). */
static int lock_resumed(const options *o, int *fd, tr_error *err)
{
    struct stat st;
    if (stat(o->resume, &st) != 0 || !S_ISDIR(st.st_mode))
        return error_set(err, "%s: not the directory of a run", o->resume);
    return file_check_writable(o->resume, err) || file_lock_dir(o->resume, fd, err);
}

/* The error, naming the process when there are several. */
static void fail_as(const tr_error *err, int rank, int ranks)
{
    if (ranks > 1) {
        char host[256] = "?";
        gethostname(host, sizeof host - 1);
        fprintf(stderr, "trainer: rank %d (%s): %s\n", rank, host, err->msg);
    } else {
        fprintf(stderr, "trainer: %s\n", err->msg);
    }
}

/* stderr to /dev/null; returns the descriptor that restore_stderr puts
 * back (-1 if it could not be kept). */
static int silence_stderr(void)
{
    fflush(stderr);
    const int kept = dup(STDERR_FILENO);
    FILE *null = fopen("/dev/null", "w");
    if (kept < 0 || !null) {
        if (null)
            fclose(null);
        if (kept >= 0)
            close(kept);
        return -1;
    }
    dup2(fileno(null), STDERR_FILENO);
    fclose(null);
    return kept;
}

static void restore_stderr(int kept)
{
    if (kept < 0)
        return;
    fflush(stderr);
    dup2(kept, STDERR_FILENO);
    close(kept);
}

/* A resumed run must go on with the data it started on: same sample counts,
 * image shape and fingerprint (version 1 states have the counts alone). */
static int check_same_data(const program *r, const char *dir, const char *run,
                           tr_error *err)
{
    const train_state *st = &r->saved;
    if (r->train.n != st->n_train || r->val.n != st->n_val)
        return error_set(err, "%s: %u training and %u validation images, but the run in %s "
                         "had %u and %u: not the same data", dir, r->train.n, r->val.n, run,
                         st->n_train, st->n_val);
    if (st->has_fingerprint && (r->all.rows != st->rows || r->all.cols != st->cols))
        return error_set(err, "%s: not the data the run in %s was trained on (%s): images "
                         "of %ux%u here, %ux%u in the state", dir, run, st->data_dir,
                         r->all.rows, r->all.cols, st->rows, st->cols);
    if (st->has_fingerprint && r->all.fingerprint != st->fingerprint)
        return error_set(err, "%s: not the data the run in %s was trained on (%s): the same "
                         "counts and shape, other images or labels (checksums %08x here, "
                         "%08x in the state)", dir, run, st->data_dir, r->all.fingerprint,
                         st->fingerprint);
    return 0;
}

static int load_data(program *r, const options *o, tr_error *err)
{
    char text[32];
    const char *dir = data_dir(o);
    if (!dir)
        return error_set(err, "no MNIST data in data/mnist nor in %s/data/mnist; fetch it "
                         "with %s/tools/fetch-mnist (or name a directory with --data)",
                         TRAINER_SOURCE_DIR, TRAINER_SOURCE_DIR);
    /* Saved with a run's state, so that --resume finds it from anywhere. */
    if (!realpath(dir, r->data_dir))
        snprintf(r->data_dir, sizeof r->data_dir, "%s", dir);
    if (dataset_load_dir(&r->all, dir, 0, err) || dataset_load_dir(&r->test, dir, 1, err))
        return -1;
    if (r->test.rows != r->all.rows || r->test.cols != r->all.cols ||
        r->test.channels != r->all.channels)
        return error_set(err, "%s: test images are %ux%ux%u but training images %ux%ux%u", dir,
                         r->test.rows, r->test.cols, r->test.channels, r->all.rows,
                         r->all.cols, r->all.channels);
    dataset_split(&r->all, o->validation_split, &r->train, &r->val);
    if (o->epochs > 0 && r->train.n == 0)
        return error_set(err, "--validation-split %s leaves no training samples out of %u",
                         cli_exact(text, sizeof text, o->validation_split), r->all.n);
    printf("Data: %s: %u training, %u validation, %u test images of %ux%u", dir, r->train.n,
           r->val.n, r->test.n, r->all.rows, r->all.cols);
    if (r->all.channels > 1)
        printf("x%u", r->all.channels);
    if (r->all.classes != 10)
        printf(", %u classes", r->all.classes);
    printf("\n");
    if (o->resume)
        return check_same_data(r, dir, o->resume, err);
    return 0;
}

/* The data must fit the model: its images the model's input, its labels
 * (training and test) the model's classes. */
static int check_model_fits(const program *r, const model *m, tr_error *err)
{
    char images[PATH_MAX + 64], labels[PATH_MAX + 64];
    for (int test = 0; test < 2; test++) {
        snprintf(images, sizeof images, "%s/%s", r->data_dir,
                 test ? DATASET_TEST_IMAGES : DATASET_TRAIN_IMAGES);
        snprintf(labels, sizeof labels, "%s/%s", r->data_dir,
                 test ? DATASET_TEST_LABELS : DATASET_TRAIN_LABELS);
        if (model_check_data(m, test ? &r->test : &r->all, images, labels, err))
            return -1;
    }
    return 0;
}

static int build_model(program *r, const options *o, tr_error *err)
{
    if (o->resume)
        return check_model_fits(r, &r->model, err);
    if (o->load) {
        if (ckpt_load(&r->model, o->load, err) || check_model_fits(r, &r->model, err))
            return -1;
        mlp_shape want, have;
        if ((o->given & (GIVEN_HIDDEN | GIVEN_LAYERS)) && o->layers_text)
            return error_set(err, "--load takes the model's layers from %s; --layers and "
                             "--model do not go with it", o->load);
        if ((o->given & GIVEN_HIDDEN) &&
            (mlp_shape_make(&want, (int)r->all.dim, o->hidden, o->n_hidden,
                            model_classes(&r->model), err) ||
             model_mlp_shape(&r->model, &have, err) ||
             memcmp(want.sizes, have.sizes, sizeof want.sizes) != 0 ||
             want.n_layers != have.n_layers))
            return error_set(err, "--hidden %s does not match the model in %s",
                             o->hidden_text, o->load);
        return 0;
    }
    mlp_shape shape;
    const tensor_shape images = {(int)r->all.rows, (int)r->all.cols, (int)r->all.channels};
    const int classes = (int)r->all.classes;
    if (o->layers_text) {
        layer layers[MODEL_MAX_LAYERS];
        int n;
        tr_error why;
        char preset[512];
        /* The preset's classifier has the data's classes. */
        const char *text = o->layers_text;
        if (o->preset && !model_preset_layers(o->preset, classes, preset, sizeof preset))
            text = preset;
        /* Parsed when the flags were read; here the shapes meet the data. */
        if (model_parse_layers(text, layers, &n, &why) ||
            model_init(&r->model, images, layers, n, &why)) {
            r->bad_layers = 1;
            return error_set(err, "--layers: %s", why.msg);
        }
        if (model_classes(&r->model) != classes) {
            r->bad_layers = 1;
            return error_set(err, "--layers: the last layer has %d classes, the labels %d",
                             model_classes(&r->model), classes);
        }
    } else if (mlp_shape_make(&shape, (int)r->all.dim, o->hidden, o->n_hidden, classes, err) ||
               model_init_mlp(&r->model, images, &shape, err)) {
        return -1;
    }
    if (check_model_fits(r, &r->model, err))
        return -1;
    model_init_glorot(&r->model, o->seed);
    return 0;
}

/* Writes the canvas that a plot function just drew (plot_status is what it
 * returned) to path, and frees it. */
static int save_picture(int plot_status, canvas *c, const char *path, tr_error *err)
{
    if (plot_status)
        return -1;
    int status = canvas_save_png(c, path, err);
    canvas_free(c);
    return status;
}

/* The console's side of a run: the epoch lines and the progress bar. */
static void console_epoch_start(void *ctx, int epoch, int epochs, long first_batch)
{
    progress_state *p = ctx;
    printf("Epoch %d/%d%s\n", epoch, epochs, first_batch ? " (resumed)" : "");
    fflush(stdout);
    p->start = run_clock();
    p->last_draw = 0.0;
}

static void console_epoch_end(void *ctx, const epoch_stats *st, long n_batches,
                              double train_seconds, long samples)
{
    progress_state *p = ctx;
    const int has_val = !isnan(st->val_loss);
    if (p->tty) {
        print_epoch_tty(p, n_batches, train_seconds, st, has_val);
    } else {
        printf("%ld/%ld - %.2fs - %.0f samples/s - loss: %.4f - accuracy: %.4f", n_batches,
               n_batches, st->seconds, (double)samples / train_seconds, st->loss,
               st->accuracy);
        if (has_val)
            printf(" - val_loss: %.4f - val_accuracy: %.4f", st->val_loss, st->val_accuracy);
        printf("\n");
    }
    fflush(stdout);
}

/* What the callbacks did after an epoch, in Keras' words. */
static void console_callbacks(void *ctx, const epoch_stats *st, const callback_state *cb,
                              const callback_actions *a)
{
    const progress_state *p = ctx;
    if (a->save_best)
        printf("Epoch %d: %s improved to %.5f, saving model.best.ckpt\n", st->epoch,
               monitor_name(p->watched), cb->saved_best);
    if (a->lr_changed)
        printf("Epoch %d: ReduceLROnPlateau reducing learning rate to %.9g.\n", st->epoch,
               (double)cb->lr);
    if (a->stop)
        printf("Epoch %d: early stopping\n", st->epoch);
    fflush(stdout);
}

/* Why training ended and whose weights the model holds, once it has. */
static void report_callbacks(const run *r, const options *o, int epochs_done)
{
    const callback_config *c = &o->callbacks;
    const callback_state *cb = run_callbacks(r);
    if (!c->early_stopping)
        return;
    if (cb->stopped_epoch)
        printf("Stopped after epoch %d: %s did not improve for %d epoch%s.\n",
               cb->stopped_epoch, monitor_name(c->monitor), c->patience,
               c->patience == 1 ? "" : "s");
    if (c->restore_best && cb->best_epoch)
        printf("Restored the weights of epoch %d (%s %.4f), the best of %d.\n",
               cb->best_epoch, monitor_name(c->monitor), cb->best, epochs_done);
}

/* Trains to the last epoch.  Returns 0, -1 on error, -2 when another rank
 * than 0 could not start and has said so, or the signal number when
 * interrupted (the state then saved). */
static int fit(program *r, const options *o, const run_files *out, tr_error *err)
{
    const int rank = group_rank();
    const run_config cfg = {.epochs = o->epochs, .batch_size = o->batch_size,
                            .threads = o->threads, .shards = o->shards,
                            .ranks = group_size(), .lr = o->lr,
                            .validation_split = o->validation_split, .seed = o->seed,
                            .out_dir = rank == 0 ? o->out_dir : NULL,
                            .data_dir = r->data_dir, .plots = o->plots,
                            .callbacks = o->callbacks};
    const int failed = run_new(&r->run, &r->model, &r->train, &r->val, &cfg, err) ||
                       (o->resume && run_resume(r->run, &r->saved, r->saved_m, r->saved_v,
                                                err));
    /* The first rank that could not start says why: rank 0 at the end, as
     * for any error, another here; the others end without a word. */
    const int first = group_first(failed);
    if (first > 0 && rank == first)
        fail_as(err, rank, group_size());
    if (first >= 0)
        return first > 0 ? -2 : -1;
    /* Under mpirun the standard output is a pseudo-terminal even when it goes
     * to a file: the progress bar only for a process alone. */
    progress_state prog = {.tty = group_size() == 1 && isatty(STDOUT_FILENO),
                           .watched = o->callbacks.monitor};
    if (prog.tty)
        handle_signal(SIGWINCH, on_resize);
    const run_observer console = {.epoch_start = console_epoch_start,
                                  .batch = prog.tty ? draw_progress : NULL,
                                  .epoch_end = console_epoch_end,
                                  .callbacks = console_callbacks, .ctx = &prog};
    const long steps0 = run_steps(r->run);
    const double sent0 = group_bytes_sent();
    const int rc = run_fit(r->run, &stop_signal, &console, err);
    if (rc >= 0 && group_size() > 1 && run_steps(r->run) > steps0)
        printf("Between the processes: rank 0 sent %.1f kB a step (%ld steps)\n",
               (group_bytes_sent() - sent0) / 1e3 / (double)(run_steps(r->run) - steps0),
               run_steps(r->run) - steps0);
    if (rc == 0) {
        int epoch;
        long step, n_batches;
        run_position(r->run, &epoch, &step, &n_batches);
        report_callbacks(r->run, o, epoch - 1);
    }
    if (rc <= 0)
        return rc;
    int epoch;
    long step, n_batches;
    run_position(r->run, &epoch, &step, &n_batches);
    printf("\n");
    if (rank == 0)
        fprintf(stderr, "trainer: interrupted in epoch %d after step %ld of %ld; the state "
                "is saved in %s\ncontinue with: %strainer --resume %s\n", epoch, step,
                n_batches, out->state, group_size() > 1 ? "mpirun -np R " : "", o->out_dir);
    return stop_signal ? stop_signal : SIGINT;
}

static int report_test(program *r, const options *o, const run_files *out,
                       tr_error *err)
{
    uint8_t *pred = malloc(r->test.n ? r->test.n : 1);
    if (!pred)
        return error_set(err, "out of memory");
    double loss, acc;
    /* The run's evaluator when there was a run: one set of workspaces. */
    if (!r->run && evaluator_new(&r->eval, &r->model, run_threads(o), err)) {
        free(pred);
        return -1;
    }
    evaluator *e = r->run ? run_evaluator(r->run) : r->eval;
    if (evaluator_run(e, &r->model, &r->test, &loss, &acc, pred, err)) {
        free(pred);
        return -1;
    }
    printf("Test loss: %.4f - test accuracy: %.4f (%u images)\n", loss, acc, r->test.n);
    if (r->test.n > 1)
        printf("Test image 1: predicted %d, true label %d\n", pred[1], r->test.labels[1]);
    int status = 0;
    canvas c;
    if (group_rank() == 0 && o->plots && o->epochs > 0)
        status = save_picture(plot_predictions(&c, &r->test, pred, 0, 40, 0, err), &c,
                              out->predictions, err);
    free(pred);
    return status;
}

int main(int argc, char **argv)
{
    /* A write past the file-size limit (ulimit -f) fails with EFBIG, which
     * is reported and leaves the earlier files, instead of a signal that
     * kills the process with temporary files left behind. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "predict") == 0)
        return predict_main(argc - 1, argv + 1);
    if (argc > 1 && strcmp(argv[1], "export") == 0)
        return export_main(argc - 1, argv + 1);
    tr_error err;
    if (group_start(&err)) {
        fprintf(stderr, "trainer: %s\n", err.msg);
        group_end();
        return EXIT_FAILURE;
    }
    const int ranks = group_size(), rank = group_rank();
    /* Rank 0 speaks for the group; the others say only what is theirs
     * alone: their failures. */
    int quiet_fd = -1;
    if (rank != 0) {
        fflush(stdout);
        if (!freopen("/dev/null", "w", stdout))
            return EXIT_FAILURE;
        quiet_fd = silence_stderr();
    }
    options o;
    int parsed = parse_options(&o, argc, argv);
    restore_stderr(quiet_fd);
    if (parsed) {
        group_end();
        return parsed > 0 ? EXIT_SUCCESS : EXIT_USAGE;
    }

    program r = {0};
    run_files out;
    int status = EXIT_FAILURE;
    char state_path[4096];
    int lock_fd = -1;
    int told = 0; /* the error was said by the rank that met it */
    /* A resumed run locks its directory before it reads anything there: one
     * that read a state another run then replaced would overwrite that run's
     * files with its own.  A new run reads nothing there, and locks it once
     * its inputs have passed, so that bad input leaves no directory behind. */
    int failed = o.resume && rank == 0 && lock_resumed(&o, &lock_fd, &err);
    if (o.resume && group_first(failed) >= 0) {
        if (rank == 0)
            fail_as(&err, rank, ranks);
        file_unlock_dir(lock_fd);
        group_end();
        return EXIT_FAILURE;
    }
    failed = (o.resume && read_saved_run(&r, &o, state_path, sizeof state_path, &err)) ||
             run_files_make(&out, o.out_dir, &err) || load_data(&r, &o, &err) ||
             build_model(&r, &o, &err);
    if (!failed && o.shards % ranks)
        failed = error_set(&err, "--shards %d cannot be split evenly over %d processes: "
                           "give a multiple of %d", o.shards, ranks, ranks) != 0;
    if (!failed && rank == 0 && o.epochs > 0 && !o.resume)
        failed = file_make_dirs(o.out_dir, &err) || file_check_writable(o.out_dir, &err) ||
                 file_lock_dir(o.out_dir, &lock_fd, &err);
    /* Every process has read the data and built the model, or none trains:
     * the first that could not names itself. */
    const int first_failed = group_first(failed);
    if (first_failed >= 0) {
        if (rank == first_failed)
            fail_as(&err, rank, ranks);
        status = r.bad_layers ? EXIT_USAGE : EXIT_FAILURE;
        program_free(&r);
        file_unlock_dir(lock_fd);
        group_end();
        return status;
    }

    char shape[512];
    mlp_shape widths;
    tr_error not_mlp;
    if (model_mlp_shape(&r.model, &widths, &not_mlp) == 0)
        mlp_shape_format(&widths, shape, sizeof shape);
    else
        model_format_layers(&r.model, shape, sizeof shape);
    int nt = run_threads(&o);
    char hosts[1024];
    group_hosts(hosts, sizeof hosts);
    printf("trainer %s: %s, batch %d in %d shard%s, ", TRAINER_VERSION, shape, o.batch_size,
           o.shards, o.shards == 1 ? "" : "s");
    if (ranks > 1)
        printf("%d processes x %d thread%s on %s,", ranks, nt, nt == 1 ? "" : "s", hosts);
    else
        printf("%d thread%s", nt, nt == 1 ? "" : "s");
    if (nt < o.threads && (o.given & GIVEN_THREADS))
        printf(" (of %d asked: no more threads than shards)", o.threads);
    if (ranks == 1)
        printf(" on %d core%s,", train_cores(), train_cores() == 1 ? "" : "s");
    printf(" %d epoch%s, Adam lr %g, seed %llu\n", o.epochs, o.epochs == 1 ? "" : "s", o.lr,
           o.seed);
    model_summary(&r.model, stdout);
    if (o.resume)
        printf("Resuming %s at epoch %d, step %ld\n", state_path, r.saved.epoch,
               r.saved.progress.next_batch);
    if (o.epochs > 0) {
        double t0 = run_clock();
        const char *why = o.plots ? canvas_font_fallback() : NULL;
        if (why)
            fprintf(stderr, "trainer: text in the pictures in the built-in bitmap font: %s\n",
                    why);
        canvas c;
        /* samples.png, before training (the notebook shows a digit first). */
        if (rank == 0 && o.plots &&
            save_picture(plot_digits(&c, &r.train, 0, 20, 1, &err), &c, out.samples, &err))
            failed = 1;
        if (group_first(failed) >= 0) /* a collective: every rank is here */
            goto done;
        catch_signals();
        int rc = fit(&r, &o, &out, &err);
        told = rc == -2;
        if (rc < 0)
            goto done;
        if (rc > 0) {
            program_free(&r);
            file_unlock_dir(lock_fd);
            group_end();
            return 128 + rc;
        }
        printf("Trained in %.2fs; wrote %s and %s\n", run_clock() - t0, out.history, out.model);
    }
    if (report_test(&r, &o, &out, &err))
        goto done;
    if (o.plots && o.epochs > 0)
        printf("Pictures: %s, %s, %s\n", out.samples, out.curves, out.predictions);
    status = EXIT_SUCCESS;
done:
    /* After the start, the errors are the group's (run_fit agrees on them):
     * rank 0 tells them. */
    if (status != EXIT_SUCCESS && rank == 0 && !told)
        fail_as(&err, rank, ranks);
    if (r.bad_layers)
        status = EXIT_USAGE;
    program_free(&r);
    file_unlock_dir(lock_fd);
    group_end();
    return status;
}
