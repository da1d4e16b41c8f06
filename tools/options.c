/* The trainer's command line (options.h). */
#include "options.h"

#include <errno.h>
#include <math.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "dataset.h"
#include "group.h"
#include "train.h"

#define MAX_THREADS 256

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: trainer [OPTION]...\n"
            "       trainer predict [--model FILE] IMAGE...   (see trainer predict --help)\n"
            "       trainer export [--model FILE] [--onnx OUT] [--safetensors OUT]\n"
            "       trainer dataset DIR   (describe a data set; see trainer dataset --help)\n"
            "Train an image classifier on MNIST-format data (Keras' Sequential and fit),\n"
            "or classify pictures with a trained one, or export it.\n"
            "\n"
            "  --data DIR              the four IDX files, plain or .gz (default: data/mnist\n"
            "                          here, else %s/data/mnist); CIFAR-10's\n"
            "                          binary batches; or a folder of PNG and JPEG\n"
            "                          pictures with one subfolder per class (and\n"
            "                          DIR/train, DIR/test when both are there)\n"
            "  --test-data DIR         the test set, when --data does not hold it\n"
            "  --image-size HxW        resize the folder's pictures (bilinear; default:\n"
            "                          all must have the first one's size)\n"
            "  --color MODE            grayscale or rgb (default: grayscale when every\n"
            "                          picture is grey)\n"
            "  --class-names FILE      names for an IDX set's classes, one per line\n"
            "                          (default: DIR/class-names.txt when there)\n"
            "  --out DIR               where history.csv, model.ckpt, training.state and\n"
            "                          the pictures go, created if missing (default: .)\n"
            "  --hidden LIST           hidden layer widths (default: 128,32; '' for none)\n"
            "  --model NAME            mlp (the notebook's, the default), convnet (Keras'\n"
            "                          mnist_convnet: batch 128, validation split 0.1 and\n"
            "                          15 epochs unless given) or convnet-bn (batch\n"
            "                          normalization and augmentation, AdamW, one cycle:\n"
            "                          99.5%% on MNIST; see docs/model.md)\n"
            "  --layers SPEC           any stack, Keras' layers by name, e.g.\n"
            "                          conv2d(32,3,relu),maxpool2d(2),flatten,\n"
            "                          dropout(0.5),dense(10,softmax); also\n"
            "                          conv2d(F,K,same), dense(N,relu) (docs/model.md)\n"
            "  --epochs N              passes over the training set (default: 25; 0 only\n"
            "                          evaluates)\n"
            "  --batch-size N          samples per optimizer step (default: 32)\n"
            "  --lr X                  learning rate, a schedule's peak (default: the\n"
            "                          optimizer's: 0.01 for sgd, else 0.001)\n"
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
            "\n",
            TRAINER_SOURCE_DIR, tr_train_cores());
    fprintf(f,
            "The optimizer (Keras 3's formulas and defaults; see docs/model.md):\n"
            "  --optimizer NAME        adam (default), adamw, sgd or rmsprop\n"
            "  --momentum X            sgd's or rmsprop's momentum, 0 <= X < 1 (default: 0)\n"
            "  --nesterov              Nesterov momentum (sgd)\n"
            "  --weight-decay X        decoupled decay of every weight by X times the\n"
            "                          rate each step (default: 0.004 for adamw, else 0)\n"
            "  --lr-schedule NAME      constant (default), cosine, exponential or onecycle,\n"
            "                          stepped every batch\n"
            "  --warmup-epochs X       rise linearly from 0 to --lr over X epochs first\n"
            "                          (onecycle: the rising part, default 30%% of the run)\n"
            "  --decay-rate X          exponential: the factor per epoch, 0 < X <= 1\n"
            "  --label-smoothing X     targets (1 - X) one-hot + X / classes (default: 0)\n"
            "\n"
            "Keras' callbacks (each epoch's figures decide; docs/usage.md has the rules):\n"
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
            "2 for a bad command line, 130, 143 or 129 when interrupted (128 + the signal).\n");
}

enum {
    OPT_DATA = 256, OPT_OUT, OPT_HIDDEN, OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_VSPLIT,
    OPT_SEED, OPT_THREADS, OPT_SHARDS, OPT_LOAD, OPT_RESUME, OPT_NO_PLOTS, OPT_HELP, OPT_VERSION,
    OPT_EARLY, OPT_MONITOR, OPT_MIN_DELTA, OPT_NO_RESTORE, OPT_SAVE_BEST, OPT_REDUCE_LR,
    OPT_LR_PATIENCE, OPT_LR_MIN_DELTA, OPT_LR_COOLDOWN, OPT_MIN_LR, OPT_MODEL, OPT_LAYERS,
    OPT_OPTIMIZER, OPT_MOMENTUM, OPT_NESTEROV, OPT_WEIGHT_DECAY, OPT_SCHEDULE, OPT_WARMUP,
    OPT_DECAY_RATE, OPT_SMOOTHING, OPT_TEST_DATA, OPT_IMAGE_SIZE, OPT_COLOR, OPT_CLASS_NAMES
};

/* The optimizer's flags, as given (NaN or -1: not given). */
typedef struct {
    int kind;              /* tr_optimizer_kind, -1 */
    double momentum, weight_decay, warmup, decay_rate, smoothing;
    int nesterov, schedule; /* schedule: tr_schedule_kind, -1 */
} optimizer_flags;

/* The optimizer's flags; they set f.  Returns 1 when c is not one. */
static int parse_optimizer_flag(optimizer_flags *f, int c, const char *arg)
{
    switch (c) {
    case OPT_OPTIMIZER: {
        tr_optimizer_kind k;
        if (tr_optimizer_find(arg, &k))
            return cli_bad_flag("--optimizer", arg, "expected adam, adamw, sgd or rmsprop");
        f->kind = (int)k;
        return 0;
    }
    case OPT_SCHEDULE: {
        tr_schedule_kind k;
        if (tr_schedule_find(arg, &k))
            return cli_bad_flag("--lr-schedule", arg,
                                "expected constant, cosine, exponential or onecycle");
        f->schedule = (int)k;
        return 0;
    }
    case OPT_MOMENTUM: return cli_double("--momentum", arg, 0.0, 0, 1.0, 1, &f->momentum);
    case OPT_NESTEROV: f->nesterov = 1; return 0;
    case OPT_WEIGHT_DECAY:
        return cli_double("--weight-decay", arg, 0.0, 0, 1.0, 1, &f->weight_decay);
    case OPT_WARMUP: return cli_double("--warmup-epochs", arg, 0.0, 0, 1e6, 0, &f->warmup);
    case OPT_DECAY_RATE: return cli_double("--decay-rate", arg, 0.0, 1, 1.0, 0, &f->decay_rate);
    case OPT_SMOOTHING:
        return cli_double("--label-smoothing", arg, 0.0, 0, 1.0, 0, &f->smoothing);
    default: return 1;
    }
}

/* o->opt from the flags f: the optimizer's defaults, then what was given;
 * says on stderr what does not go together. */
static int make_optimizer(options *o, const optimizer_flags *f)
{
    tr_optimizer_hparams *h = &o->opt;
    /* A preset's recipe stands where no flag says otherwise. */
    const tr_model_preset *p = o->preset;
    tr_optimizer_kind kind = OPTIMIZER_ADAM;
    tr_schedule_kind schedule = SCHEDULE_CONSTANT;
    if (p && p->optimizer && tr_optimizer_find(p->optimizer, &kind))
        kind = OPTIMIZER_ADAM;
    if (p && p->schedule && tr_schedule_find(p->schedule, &schedule))
        schedule = SCHEDULE_CONSTANT;
    *h = tr_optimizer_defaults(f->kind < 0 ? kind : (tr_optimizer_kind)f->kind);
    h->schedule = f->schedule < 0 ? schedule : (tr_schedule_kind)f->schedule;
    if (p && p->lr > 0.0 && f->kind < 0)
        h->lr = (float)p->lr;
    if (p && p->label_smoothing > 0.0)
        o->label_smoothing = (float)p->label_smoothing;
    if (o->given & GIVEN_LR)
        h->lr = (float)o->lr;
    else
        o->lr = (double)h->lr;
    if (f->momentum == f->momentum) h->momentum = (float)f->momentum;
    if (f->weight_decay == f->weight_decay) h->weight_decay = (float)f->weight_decay;
    if (f->warmup == f->warmup) h->warmup_epochs = f->warmup;
    if (f->decay_rate == f->decay_rate) h->decay_rate = f->decay_rate;
    if (f->smoothing == f->smoothing) o->label_smoothing = (float)f->smoothing;
    h->nesterov = f->nesterov;
    h->epochs = o->epochs;
    tr_error err;
    if (h->schedule == SCHEDULE_EXPONENTIAL && f->decay_rate != f->decay_rate) {
        fprintf(stderr, "trainer: --lr-schedule exponential needs --decay-rate (see "
                "--help)\n");
        return -1;
    }
    if (tr_optimizer_check(h, &err)) {
        fprintf(stderr, "trainer: %s (see --help)\n", err.msg);
        return -1;
    }
    if (o->callbacks.reduce_lr && tr_optimizer_scheduled(h)) {
        fprintf(stderr, "trainer: --reduce-lr-on-plateau sets the rate itself: it does not go "
                "with --lr-schedule or --warmup-epochs (see --help)\n");
        return -1;
    }
    return 0;
}

/* The callback flags; they set o->callbacks.  Returns 1 when c is not one. */
static int parse_callback_flag(options *o, int c, const char *arg)
{
    tr_callback_config *cb = &o->callbacks;
    long v;
    tr_error err;
    switch (c) {
    case OPT_EARLY:
        if (cli_long("--early-stopping", arg, 0, 1000000, &v)) return -1;
        cb->early_stopping = 1;
        cb->patience = (int)v;
        break;
    case OPT_MONITOR:
        if (tr_monitor_parse(arg, &cb->monitor, &err)) {
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

/* The cores of this machine, shared by the group's processes on it. */
static int default_threads(void)
{
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    const int here = local && atoi(local) > 0 ? atoi(local) : 1;
    const int per = tr_train_cores() / here;
    return per > 0 ? per : 1;
}

/* The only short option is -h: a word given with one dash ("-epochs") is
 * named as typed, with the long option it resembles, before getopt would
 * read it as a cluster of letters.  The values of options are skipped. */
static int check_short_options(int argc, char **argv, const struct option *longopts)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0)
            return 0;
        if (a[0] == '-' && a[1] == '-') {
            for (int k = 0; longopts[k].name; k++)
                if (strcmp(a + 2, longopts[k].name) == 0 &&
                    longopts[k].has_arg == required_argument)
                    i++;
            continue;
        }
        if (a[0] != '-' || a[1] == '\0' || strcmp(a, "-h") == 0)
            continue;
        const char *name = a + 1 + strspn(a + 1, "-");
        const char *eq = strchr(name, '=');
        const size_t len = eq ? (size_t)(eq - name) : strlen(name);
        for (int k = 0; longopts[k].name; k++)
            if (strlen(longopts[k].name) == len && strncmp(name, longopts[k].name, len) == 0) {
                fprintf(stderr, "trainer: unknown option '%s': did you mean --%s? (see "
                        "--help)\n", a, longopts[k].name);
                return -1;
            }
        fprintf(stderr, "trainer: unknown option '%s' (see --help)\n", a);
        return -1;
    }
    return 0;
}

int options_parse(options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, OPT_DATA},
        {"test-data", required_argument, NULL, OPT_TEST_DATA},
        {"image-size", required_argument, NULL, OPT_IMAGE_SIZE},
        {"color", required_argument, NULL, OPT_COLOR},
        {"class-names", required_argument, NULL, OPT_CLASS_NAMES},
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
        {"optimizer", required_argument, NULL, OPT_OPTIMIZER},
        {"momentum", required_argument, NULL, OPT_MOMENTUM},
        {"nesterov", no_argument, NULL, OPT_NESTEROV},
        {"weight-decay", required_argument, NULL, OPT_WEIGHT_DECAY},
        {"lr-schedule", required_argument, NULL, OPT_SCHEDULE},
        {"warmup-epochs", required_argument, NULL, OPT_WARMUP},
        {"decay-rate", required_argument, NULL, OPT_DECAY_RATE},
        {"label-smoothing", required_argument, NULL, OPT_SMOOTHING},
        {"model", required_argument, NULL, OPT_MODEL},
        {"layers", required_argument, NULL, OPT_LAYERS},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    *o = (options){.invoked = argc > 0 ? argv[0] : "trainer", .out_dir = ".",
                   .hidden_text = "128,32", .epochs = 25, .batch_size = 32,
                   .threads = default_threads(), .shards = default_threads() * tr_group_size(),
                   .lr = 1e-3,
                   .validation_split = 0.2, .seed = 0, .plots = 1,
                   .callbacks = tr_callback_defaults()};
    optimizer_flags of = {.kind = -1, .momentum = NAN, .weight_decay = NAN, .warmup = NAN,
                          .decay_rate = NAN, .smoothing = NAN, .schedule = -1};
    opterr = 0;
    int c;
    long v;
    unsigned callback_flags = 0; /* CALLBACK_GIVEN_* */
    if (check_short_options(argc, argv, longopts))
        return -1;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        const char *flag = argv[optind - 1];
        const int cb = parse_callback_flag(o, c, optarg);
        if (cb < 0)
            return -1;
        if (cb == 0) {
            callback_flags |= callback_given(c);
            o->given |= GIVEN_CALLBACKS;
            continue;
        }
        const int opt = parse_optimizer_flag(&of, c, optarg);
        if (opt < 0)
            return -1;
        if (opt == 0) {
            o->given |= GIVEN_OPTIMIZER;
            continue;
        }
        switch (c) {
        case OPT_DATA: o->data_dir = optarg; o->given |= GIVEN_DATA; break;
        case OPT_TEST_DATA: o->test_dir = optarg; o->given |= GIVEN_TEST_DATA; break;
        case OPT_CLASS_NAMES: o->class_names = optarg; o->given |= GIVEN_PICTURES; break;
        case OPT_IMAGE_SIZE:
            if (cli_image_size(optarg, &o->image_rows, &o->image_cols)) return -1;
            o->given |= GIVEN_PICTURES;
            break;
        case OPT_COLOR:
            if (cli_color(optarg, &o->image_channels)) return -1;
            o->given |= GIVEN_PICTURES;
            break;
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
            const tr_model_preset *p;
            tr_error why;
            if (tr_model_preset_find(optarg, &p, &why))
                return cli_bad_flag("--model", optarg, "expected mlp, convnet or convnet-bn");
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
        case 'h':
        case OPT_HELP: usage(stdout); return 1;
        case ':':
            fprintf(stderr, "trainer: %s needs a value (see --help)\n", flag);
            return -1;
        case OPT_VERSION: printf("trainer %s\n", TRAINER_VERSION); return 1;
        case '?':
        default:
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
                           GIVEN_LAYERS | GIVEN_OPTIMIZER | GIVEN_PICTURES;
    if (o->resume && (o->given & fixed)) {
        fprintf(stderr, "trainer: --resume continues a run with its own settings; only "
                "--data, --test-data, --threads, --epochs and --no-plots may go with it "
                "(see --help)\n");
        return -1;
    }
    tr_error err;
    if (tr_mlp_parse_hidden(o->hidden_text, o->hidden, &o->n_hidden, &err)) {
        fprintf(stderr, "trainer: %s (see --help)\n", err.msg);
        return -1;
    }
    if (o->layers_text && (o->given & GIVEN_HIDDEN)) {
        fprintf(stderr, "trainer: --hidden sets the dense layers of --model mlp; it does not "
                "go with --layers or --model convnet (see --help)\n");
        return -1;
    }
    tr_layer layers[MODEL_MAX_LAYERS];
    int n;
    if (o->layers_text && !o->preset && tr_model_parse_layers(o->layers_text, layers, &n, &err)) {
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
        tr_callback_config_check(&o->callbacks, callback_flags, o->validation_split, &err)) {
        fprintf(stderr, "trainer: %s (see --help)\n", err.msg);
        return -1;
    }
    return o->resume ? 0 : make_optimizer(o, &of);
}

int options_threads(const options *o)
{
    return tr_train_threads_used(o->threads, o->shards);
}

const char *options_data_dir(const options *o)
{
    return o->data_dir ? o->data_dir : tr_dataset_default_dir();
}

int options_take_state(options *o, const tr_train_state *st, const tr_model *m,
                       const char *state_path, tr_error *err)
{
    o->out_dir = o->resume;
    tr_mlp_shape shape;
    tr_error why;
    if (tr_model_mlp_shape(m, &shape, &why) == 0) {
        o->n_hidden = shape.n_layers - 1;
        for (int l = 0; l < o->n_hidden; l++)
            o->hidden[l] = shape.sizes[l + 1];
    }
    o->batch_size = st->batch_size;
    o->shards = st->shards;
    o->lr = st->lr;
    o->opt = st->opt;
    o->label_smoothing = st->label_smoothing;
    /* A schedule spans the run's epochs: more would restart none of it. */
    if ((o->given & GIVEN_EPOCHS) && o->epochs != st->epochs && tr_optimizer_scheduled(&st->opt))
        return tr_error_set(err, "--epochs %d: the run in %s follows a %s schedule over %d "
                            "epochs, which cannot change", o->epochs, o->resume,
                            tr_schedule_name(st->opt.schedule), st->epochs);
    o->validation_split = st->validation_split;
    o->seed = st->seed;
    o->callbacks = st->callbacks;
    if (!(o->given & GIVEN_EPOCHS))
        o->epochs = st->epochs;
    else if (o->epochs < st->epoch - 1)
        return tr_error_set(err, "--epochs %d: the run in %s has done %d epochs already",
                            o->epochs, o->resume, st->epoch - 1);
    o->image_rows = st->image_rows;
    o->image_cols = st->image_cols;
    o->image_channels = st->image_channels;
    if (!(o->given & GIVEN_TEST_DATA) && st->test_dir[0])
        o->test_dir = st->test_dir;
    if (!(o->given & GIVEN_DATA)) {
        if (!st->data_dir[0])
            return tr_error_set(err, "%s: the state names no data directory: give it with "
                                "--data DIR", state_path);
        o->data_dir = st->data_dir;
    }
    return 0;
}
