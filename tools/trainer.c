/* trainer - trains an image classifier, Keras-style, and hands predict and
 * export their command lines.
 *
 * This file holds the order of work; the command line is options.c, the
 * console console.c, the signals interrupt.c, and everything else is in the
 * library. */
#define _XOPEN_SOURCE 700 /* realpath */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt.h"
#include "cli.h"
#include "commands.h"
#include "console.h"
#include "dataset.h"
#include "fileio.h"
#include "group.h"
#include "interrupt.h"
#include "model.h"
#include "options.h"
#include "plots.h"
#include "run.h"
#include "state.h"
#include "train.h"

#define EXIT_USAGE 2

/* Everything the program holds, released in one place. */
typedef struct {
    tr_dataset all, train, val, test;
    char data_dir[PATH_MAX], test_dir[PATH_MAX];
    tr_dataset_source source;     /* the data's directories and settings */
    tr_model model;
    tr_run *run;
    tr_evaluator *eval;           /* the test set's, when there is no run */
    tr_train_state saved;         /* when resuming: the state read */
    int bad_layers;            /* --layers does not fit the data: a command-line error */
    float *saved_m, *saved_v;  /* when resuming: the optimizer's slots read */
} program;

static void program_free(program *r)
{
    tr_run_free(r->run);
    tr_evaluator_free(r->eval);
    tr_model_free(&r->model);
    tr_dataset_free(&r->all);
    tr_dataset_free(&r->test);
    free(r->saved.history);
    tr_model_buffer_free(r->saved.best_weights);
    tr_model_buffer_free(r->saved_m);
    tr_model_buffer_free(r->saved_v);
}

/* Takes a resumed run's settings from DIR/training.state, with its model and
 * the optimizer's state; --data, --threads, --epochs and --no-plots may still be given. */
static int read_saved_run(program *r, options *o, char *state_path, size_t size,
                          tr_error *err)
{
    if (snprintf(state_path, size, "%s/training.state", o->resume) >= (int)size)
        return tr_error_set(err, "%s: path too long", o->resume);
    tr_train_state *st = &r->saved;
    if (tr_state_load(st, &r->model, &r->saved_m, &r->saved_v, state_path, err))
        return -1;
    return options_take_state(o, st, &r->model, state_path, err);
    return 0;
}

/* Locks the directory of the run that --resume continues (tr_file_lock_dir). */
static int lock_resumed(const options *o, int *fd, tr_error *err)
{
    struct stat st;
    if (stat(o->resume, &st) != 0 || !S_ISDIR(st.st_mode))
        return tr_error_set(err, "%s: not the directory of a run", o->resume);
    return tr_file_check_writable(o->resume, err) || tr_file_lock_dir(o->resume, fd, err);
}

/* A resumed run must go on with the data it started on: same sample counts,
 * image shape and fingerprint (version 1 states have the counts alone). */
static int check_same_data(const program *r, const char *dir, const char *run,
                           tr_error *err)
{
    const tr_train_state *st = &r->saved;
    if (r->train.n != st->n_train || r->val.n != st->n_val)
        return tr_error_set(err, "%s: %u training and %u validation images, but the run in %s "
                            "had %u and %u: not the same data", dir, r->train.n, r->val.n, run,
                            st->n_train, st->n_val);
    if (st->has_fingerprint && (r->all.rows != st->rows || r->all.cols != st->cols))
        return tr_error_set(err, "%s: not the data the run in %s was trained on (%s): images "
                            "of %ux%u here, %ux%u in the state", dir, run, st->data_dir,
                            r->all.rows, r->all.cols, st->rows, st->cols);
    if (st->has_fingerprint && r->all.fingerprint != st->fingerprint)
        return tr_error_set(err, "%s: not the data the run in %s was trained on (%s): the same "
                            "counts and shape, other images or labels (checksums %08x here, "
                            "%08x in the state)", dir, run, st->data_dir, r->all.fingerprint,
                            st->fingerprint);
    return 0;
}

/* The data's directories as absolute paths, saved with a run's state so
 * that --resume finds them from anywhere. */
static void set_source(program *r, const options *o, const char *dir)
{
    if (!realpath(dir, r->data_dir))
        snprintf(r->data_dir, sizeof r->data_dir, "%s", dir);
    if (o->test_dir && !realpath(o->test_dir, r->test_dir))
        snprintf(r->test_dir, sizeof r->test_dir, "%s", o->test_dir);
    r->source = (tr_dataset_source){
        .dir = r->data_dir, .test_dir = o->test_dir ? r->test_dir : NULL,
        .class_names_file = o->class_names,
        .pictures = {.rows = o->image_rows, .cols = o->image_cols,
                     .channels = o->image_channels, .seed = o->seed}};
}

static int load_data(program *r, const options *o, tr_error *err)
{
    char text[32];
    const char *dir = options_data_dir(o);
    if (!dir)
        return tr_error_set(err, "no MNIST data in data/mnist nor in %s/data/mnist; fetch it "
                            "with %s/tools/fetch-mnist (or name a directory with --data)",
                            TRAINER_SOURCE_DIR, TRAINER_SOURCE_DIR);
    set_source(r, o, dir);
    if (tr_dataset_load_sets(&r->all, &r->test, &r->source, err))
        return -1;
    tr_dataset_split(&r->all, o->validation_split, &r->train, &r->val);
    if (o->epochs > 0 && r->train.n == 0)
        return tr_error_set(err, "--validation-split %s leaves no training samples out of %u",
                            cli_exact(text, sizeof text, o->validation_split), r->all.n);
    console_print_data(dir, &r->all, &r->train, &r->val, &r->test);
    if (o->resume)
        return check_same_data(r, dir, o->resume, err);
    return 0;
}

/* The data must fit the model: its images the model's input, its labels
 * (training and test) the model's classes. */
static int check_model_fits(const program *r, const tr_model *m, tr_error *err)
{
    char images[PATH_MAX + 64], labels[PATH_MAX + 64];
    for (int test = 0; test < 2; test++) {
        const tr_dataset *d = test ? &r->test : &r->all;
        if (d->n == 0)
            continue;
        if (d->format == DATASET_IDX) {
            snprintf(images, sizeof images, "%s/%s", test && r->source.test_dir
                     ? r->source.test_dir : r->data_dir,
                     test ? DATASET_TEST_IMAGES : DATASET_TRAIN_IMAGES);
            snprintf(labels, sizeof labels, "%s/%s", test && r->source.test_dir
                     ? r->source.test_dir : r->data_dir,
                     test ? DATASET_TEST_LABELS : DATASET_TRAIN_LABELS);
        } else {
            snprintf(images, sizeof images, "%s (%s set)", test && r->source.test_dir
                     ? r->source.test_dir : r->data_dir, test ? "test" : "training");
            snprintf(labels, sizeof labels, "%s", images);
        }
        if (tr_model_check_data(m, d, images, labels, err))
            return -1;
    }
    return 0;
}

/* A new model learns its classes' names from its data, and how pictures
 * are fitted to it: as MNIST's digits for 28x28 grey data, resized
 * otherwise (model.h). */
static void take_classes(tr_model *m, const tr_dataset *d)
{
    memcpy(m->class_names, d->class_names, sizeof m->class_names);
    m->fit = d->rows == 28 && d->cols == 28 && d->channels == 1 ? MODEL_FIT_DIGIT
                                                                : MODEL_FIT_RESIZE;
}

static int build_model(program *r, const options *o, tr_error *err)
{
    if (o->resume)
        return check_model_fits(r, &r->model, err);
    if (o->load) {
        if (tr_ckpt_load(&r->model, o->load, err) || check_model_fits(r, &r->model, err))
            return -1;
        if (!r->model.class_names[0])
            take_classes(&r->model, &r->all);
        tr_mlp_shape want, have;
        if ((o->given & (GIVEN_HIDDEN | GIVEN_LAYERS)) && o->layers_text)
            return tr_error_set(err, "--load takes the model's layers from %s; --layers and "
                                "--model do not go with it", o->load);
        if ((o->given & GIVEN_HIDDEN) &&
            (tr_mlp_shape_make(&want, (int)r->all.dim, o->hidden, o->n_hidden,
                               tr_model_classes(&r->model), err) ||
             tr_model_mlp_shape(&r->model, &have, err) ||
             memcmp(want.sizes, have.sizes, sizeof want.sizes) != 0 ||
             want.n_layers != have.n_layers))
            return tr_error_set(err, "--hidden %s does not match the model in %s",
                                o->hidden_text, o->load);
        return 0;
    }
    tr_mlp_shape shape;
    const tr_tensor_shape images = {(int)r->all.rows, (int)r->all.cols, (int)r->all.channels};
    const int classes = (int)r->all.classes;
    if (o->layers_text) {
        tr_layer layers[MODEL_MAX_LAYERS];
        int n;
        tr_error why;
        char preset[512];
        /* The preset's classifier has the data's classes. */
        const char *text = o->layers_text;
        if (o->preset && !tr_model_preset_layers(o->preset, classes, preset, sizeof preset))
            text = preset;
        /* Parsed when the flags were read; here the shapes meet the data. */
        if (tr_model_parse_layers(text, layers, &n, &why) ||
            tr_model_init(&r->model, images, layers, n, &why)) {
            r->bad_layers = 1;
            return tr_error_set(err, "--layers: %s", why.msg);
        }
        if (tr_model_classes(&r->model) != classes) {
            r->bad_layers = 1;
            return tr_error_set(err, "--layers: the last layer has %d classes, the labels %d",
                                tr_model_classes(&r->model), classes);
        }
    } else if (tr_mlp_shape_make(&shape, (int)r->all.dim, o->hidden, o->n_hidden, classes, err) ||
               tr_model_init_mlp(&r->model, images, &shape, err)) {
        return -1;
    }
    if (check_model_fits(r, &r->model, err))
        return -1;
    tr_model_init_glorot(&r->model, o->seed);
    take_classes(&r->model, &r->all);
    return 0;
}

/* Writes the canvas that a plot function just drew (plot_status is what it
 * returned) to path, and frees it. */
static int save_picture(int plot_status, tr_canvas *c, const char *path, tr_error *err)
{
    if (plot_status)
        return -1;
    int status = tr_canvas_save_png(c, path, err);
    tr_canvas_free(c);
    return status;
}

/* Trains to the last epoch.  Returns 0, -1 on error, -2 when another rank
 * than 0 could not start and has said so, or the signal number when
 * interrupted (the state then saved). */
static int fit(program *r, const options *o, const tr_run_files *out, tr_error *err)
{
    const int rank = tr_group_rank();
    const tr_run_config cfg = {.epochs = o->epochs, .batch_size = o->batch_size,
                            .threads = o->threads, .shards = o->shards,
                            .ranks = tr_group_size(), .lr = o->lr, .opt = o->opt,
                            .label_smoothing = o->label_smoothing,
                            .validation_split = o->validation_split, .seed = o->seed,
                            .out_dir = rank == 0 ? o->out_dir : NULL,
                            .data = &r->source, .plots = o->plots,
                            .callbacks = o->callbacks};
    const int failed = tr_run_new(&r->run, &r->model, &r->train, &r->val, &cfg, err) ||
                       (o->resume && tr_run_resume(r->run, &r->saved, r->saved_m, r->saved_v,
                                                   err));
    /* The first rank that could not start says why: rank 0 at the end, as
     * for any error, another here; the others end without a word. */
    const int first = tr_group_first(failed);
    if (first > 0 && rank == first)
        cli_fail_as(err, rank, tr_group_size());
    if (first >= 0)
        return first > 0 ? -2 : -1;
    /* Under mpirun the standard output is a pseudo-terminal even when it goes
     * to a file: the progress bar only for a process alone. */
    console prog;
    const tr_run_observer observer =
        console_start(&prog, tr_group_size() == 1 && isatty(STDOUT_FILENO), o->callbacks.monitor);
    const long steps0 = tr_run_steps(r->run);
    const double sent0 = tr_group_bytes_sent();
    const int rc = tr_run_fit(r->run, &interrupt_signal, &observer, err);
    if (rc >= 0 && tr_group_size() > 1 && tr_run_steps(r->run) > steps0)
        printf("Between the processes: rank 0 sent %.1f kB a step (%ld steps)\n",
               (tr_group_bytes_sent() - sent0) / 1e3 / (double)(tr_run_steps(r->run) - steps0),
               tr_run_steps(r->run) - steps0);
    if (rc == 0) {
        int epoch;
        long step, n_batches;
        tr_run_position(r->run, &epoch, &step, &n_batches);
        console_report_callbacks(tr_run_callbacks(r->run), &o->callbacks, epoch - 1);
    }
    if (rc <= 0)
        return rc;
    int epoch;
    long step, n_batches;
    tr_run_position(r->run, &epoch, &step, &n_batches);
    printf("\n");
    if (rank == 0) {
        fprintf(stderr, "trainer: interrupted in epoch %d after step %ld of %ld; the state "
                "is saved in %s\ncontinue with: %s", epoch, step, n_batches, out->state,
                tr_group_size() > 1 ? "mpirun -np R " : "");
        cli_print_shell_word(stderr, o->invoked);
        fputs(" --resume ", stderr);
        cli_print_shell_word(stderr, o->out_dir);
        fputc('\n', stderr);
    }
    return interrupt_signal ? interrupt_signal : SIGINT;
}

static int report_test(program *r, const options *o, const tr_run_files *out,
                       tr_error *err)
{
    if (r->test.n == 0) /* the Data line said so */
        return 0;
    uint8_t *pred = malloc(r->test.n);
    if (!pred)
        return tr_error_set(err, "out of memory");
    double loss, acc;
    /* The run's evaluator when there was a run: one set of workspaces. */
    if (!r->run && tr_evaluator_new(&r->eval, &r->model, options_threads(o), err)) {
        free(pred);
        return -1;
    }
    tr_evaluator *e = r->run ? tr_run_evaluator(r->run) : r->eval;
    if (tr_evaluator_run(e, &r->model, &r->test, &loss, &acc, pred, err)) {
        free(pred);
        return -1;
    }
    printf("Test loss: %.4f - test accuracy: %.4f (%u images)\n", loss, acc, r->test.n);
    if (r->test.n > 1) {
        char a[CLASS_NAME_MAX], b[CLASS_NAME_MAX];
        printf("Test image 1: predicted %s, true label %s\n",
               tr_class_name(r->model.class_names, pred[1], a),
               tr_class_name(r->model.class_names, r->test.labels[1], b));
    }
    int status = 0;
    tr_canvas c;
    if (tr_group_rank() == 0 && o->plots && o->epochs > 0)
        status = save_picture(tr_plot_predictions(&c, &r->test, pred, 0, 40, 0, err), &c,
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
    if (argc > 1 && strcmp(argv[1], "dataset") == 0)
        return dataset_main(argc - 1, argv + 1);
    tr_error err;
    if (tr_group_start(&err)) {
        fprintf(stderr, "trainer: %s\n", err.msg);
        tr_group_end();
        return EXIT_FAILURE;
    }
    const int ranks = tr_group_size(), rank = tr_group_rank();
    /* Rank 0 speaks for the group; the others say only what is theirs
     * alone: their failures. */
    int quiet_fd = -1;
    if (rank != 0) {
        fflush(stdout);
        if (!freopen("/dev/null", "w", stdout))
            return EXIT_FAILURE;
        quiet_fd = cli_silence_stderr();
    }
    options o;
    int parsed = options_parse(&o, argc, argv);
    cli_restore_stderr(quiet_fd);
    if (parsed) {
        tr_group_end();
        return parsed > 0 ? EXIT_SUCCESS : EXIT_USAGE;
    }

    program r = {0};
    tr_run_files out;
    int status = EXIT_FAILURE;
    char state_path[4096];
    int lock_fd = -1;
    int told = 0; /* the error was said by the rank that met it */
    /* A resumed run locks its directory before it reads anything there: one
     * that read a state another run then replaced would overwrite that run's
     * files with its own.  A new run reads nothing there, and locks it once
     * its inputs have passed, so that bad input leaves no directory behind. */
    int failed = o.resume && rank == 0 && lock_resumed(&o, &lock_fd, &err);
    if (o.resume && tr_group_first(failed) >= 0) {
        if (rank == 0)
            cli_fail_as(&err, rank, ranks);
        tr_file_unlock_dir(lock_fd);
        tr_group_end();
        return EXIT_FAILURE;
    }
    failed = (o.resume && read_saved_run(&r, &o, state_path, sizeof state_path, &err)) ||
             tr_run_files_make(&out, o.out_dir, &err) || load_data(&r, &o, &err) ||
             build_model(&r, &o, &err);
    if (!failed && o.shards % ranks)
        failed = tr_error_set(&err, "--shards %d cannot be split evenly over %d processes: "
                              "give a multiple of %d", o.shards, ranks, ranks) != 0;
    if (!failed && rank == 0 && o.epochs > 0 && !o.resume)
        failed = tr_file_make_dirs(o.out_dir, &err) || tr_file_check_writable(o.out_dir, &err) ||
                 tr_file_lock_dir(o.out_dir, &lock_fd, &err);
    /* Every process has read the data and built the model, or none trains:
     * the first that could not names itself. */
    const int first_failed = tr_group_first(failed);
    if (first_failed >= 0) {
        if (rank == first_failed)
            cli_fail_as(&err, rank, ranks);
        status = r.bad_layers ? EXIT_USAGE : EXIT_FAILURE;
        program_free(&r);
        tr_file_unlock_dir(lock_fd);
        tr_group_end();
        return status;
    }

    char shape[512];
    tr_mlp_shape widths;
    tr_error not_mlp;
    if (tr_model_mlp_shape(&r.model, &widths, &not_mlp) == 0)
        tr_mlp_shape_format(&widths, shape, sizeof shape);
    else
        tr_model_format_layers(&r.model, shape, sizeof shape);
    int nt = options_threads(&o);
    char hosts[1024];
    tr_group_hosts(hosts, sizeof hosts);
    printf("trainer %s: %s, batch %d in %d shard%s, ", TRAINER_VERSION, shape, o.batch_size,
           o.shards, o.shards == 1 ? "" : "s");
    if (ranks > 1)
        printf("%d processes x %d thread%s on %s,", ranks, nt, nt == 1 ? "" : "s", hosts);
    else
        printf("%d thread%s", nt, nt == 1 ? "" : "s");
    if (nt < o.threads && (o.given & GIVEN_THREADS))
        printf(" (of %d asked: no more threads than shards)", o.threads);
    if (ranks == 1)
        printf(" on %d core%s,", tr_train_cores(), tr_train_cores() == 1 ? "" : "s");
    char opt[256];
    tr_optimizer_describe(&o.opt, o.label_smoothing, opt, sizeof opt);
    printf(" %d epoch%s, %s, seed %llu\n", o.epochs, o.epochs == 1 ? "" : "s", opt, o.seed);
    tr_model_summary(&r.model, stdout);
    if (o.resume)
        printf("Resuming %s at epoch %d, step %ld\n", state_path, r.saved.epoch,
               r.saved.progress.next_batch);
    if (o.epochs > 0) {
        double t0 = tr_run_clock();
        const char *why = o.plots ? tr_canvas_font_fallback() : NULL;
        if (why)
            fprintf(stderr, "trainer: text in the pictures in the built-in bitmap font: %s\n",
                    why);
        tr_canvas c;
        /* samples.png, before training (the notebook shows a digit first). */
        if (rank == 0 && o.plots &&
            save_picture(tr_plot_digits(&c, &r.train, 0, 20, 1, &err), &c, out.samples, &err))
            failed = 1;
        if (tr_group_first(failed) >= 0) /* a collective: every rank is here */
            goto done;
        interrupt_catch(tr_group_size() > 1);
        int rc = fit(&r, &o, &out, &err);
        told = rc == -2;
        if (rc < 0)
            goto done;
        if (rc > 0) {
            program_free(&r);
            tr_file_unlock_dir(lock_fd);
            tr_group_end();
            return 128 + rc;
        }
        printf("Trained in %.2fs; wrote %s and %s\n", tr_run_clock() - t0, out.history, out.model);
    }
    if (report_test(&r, &o, &out, &err))
        goto done;
    if (o.plots && o.epochs > 0)
        printf("Pictures: %s, %s%s%s\n", out.samples, out.curves, r.test.n ? ", " : "",
               r.test.n ? out.predictions : "");
    status = EXIT_SUCCESS;
done:
    /* After the start, the errors are the group's (tr_run_fit agrees on them):
     * rank 0 tells them. */
    if (status != EXIT_SUCCESS && rank == 0 && !told)
        cli_fail_as(&err, rank, ranks);
    if (r.bad_layers)
        status = EXIT_USAGE;
    program_free(&r);
    tr_file_unlock_dir(lock_fd);
    tr_group_end();
    return status;
}
