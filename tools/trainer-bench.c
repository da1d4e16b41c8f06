/* trainer-bench - training and inference speed of the engine on this machine.
 *
 * Trains the default model (784-128-32-10, Keras semantics), or with
 * --model convnet Keras' mnist_convnet, or convnet-bn the recipe's layers
 * (trained with Adam at batch 128 here), on MNIST's training images (48,000,
 * or the first --samples of them), or on random images of the same shape
 * when MNIST is absent (and says so), for 1, 2 and 8 threads and batch sizes
 * 32 and 128.  Prints medians over repeated epochs: samples/s, seconds per
 * epoch, and the dense-equivalent GFLOP/s against the machine's fp32 FMA
 * peak, which it measures rather than assumes.  Then inference over the test
 * images, and the process' peak resident memory.
 *
 *   trainer-bench [--data DIR] [--epochs N] [--model mlp|convnet|convnet-bn] [--samples N]
 *                 [--quick [--threads N] [--batch-size N]]
 * --quick measures only 2 threads (or --threads) at the preset's batch (32
 * for the MLP, 128 for the conv nets; or --batch-size), and prints one line of figures, for
 * tools/ab-bench and tools/compare-torch. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cli.h"
#include "dataset.h"
#include "model.h"
#include "rng.h"
#include "run.h"
#include "train.h"


static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The target's widest vector: a wider one is not split cleanly by GCC and
 * would measure the stack, not the FMA units. */
#if defined(__AVX512F__)
#define PEAK_LANES 16
#elif defined(__AVX__)
#define PEAK_LANES 8
#else
#define PEAK_LANES 4
#endif
typedef float vf __attribute__((vector_size(PEAK_LANES * sizeof(float))));

/* fp32 FMA throughput of one core: 12 independent chains of multiply-adds,
 * enough to cover the latency of two FMA units, unrolled so that the chains
 * stay in registers. */
static double measure_core_peak(void)
{
    enum { CHAINS = 12 };
    const long iters = 320000000 / PEAK_LANES;
    vf acc[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        for (int k = 0; k < PEAK_LANES; k++)
            acc[c][k] = (float)(c + k) * 1e-3f;
    vf m, a;
    for (int k = 0; k < PEAK_LANES; k++) {
        m[k] = 0.999999f;
        a[k] = 1e-6f;
    }
    double t0 = tr_run_clock();
    for (long i = 0; i < iters; i++) {
#pragma GCC unroll 12
        for (int c = 0; c < CHAINS; c++)
            acc[c] = acc[c] * m + a;
    }
    double t = tr_run_clock() - t0;
    float sink = 0.0f;
    for (int c = 0; c < CHAINS; c++)
        sink += acc[c][0];
    if (sink == 12345.0f)
        printf(" ");
    return 2.0 * PEAK_LANES * CHAINS * (double)iters / t / 1e9;
}

/* The same loop on every core at once, slowest and fastest core: the cores of
 * a shared virtual machine do not always run at the same speed, which shows in
 * every multithreaded figure. */
static void measure_peaks_together(int cores, double *slowest, double *fastest)
{
    enum { MAX_CORES = 256 };
    double peak[MAX_CORES];
    if (cores > MAX_CORES)
        cores = MAX_CORES;
#ifdef _OPENMP
    int team = 1;
#pragma omp parallel num_threads(cores)
    {
        peak[omp_get_thread_num()] = measure_core_peak();
#pragma omp single
        team = omp_get_num_threads();
    }
    cores = team;
#else
    peak[0] = measure_core_peak();
    cores = 1;
#endif
    *slowest = *fastest = peak[0];
    for (int c = 1; c < cores; c++) {
        *slowest = peak[c] < *slowest ? peak[c] : *slowest;
        *fastest = peak[c] > *fastest ? peak[c] : *fastest;
    }
}

/* Dense-equivalent floating-point work of one training sample: the forward
 * pass, the weight gradients, and the input gradients of every layer but the
 * first (which has none), two operations per multiply-add. */
static double train_flop_per_sample(const tr_model *m)
{
    double macs = 0.0;
    for (int i = 0; i < m->n_layers; i++) {
        const double w = tr_layer_forward_macs(&m->layer[i]);
        macs += 2.0 * w + (i > 0 ? w : 0.0);
    }
    return 2.0 * macs;
}

static void random_dataset(tr_dataset *d, uint32_t n, uint64_t seed)
{
    tr_rng r;
    tr_rng_seed(&r, seed, 5);
    *d = (tr_dataset){.n = n, .rows = 28, .cols = 28, .dim = 784, .owned = 1};
    d->pixels = malloc((size_t)n * 784);
    d->labels = malloc(n);
    if (!d->pixels || !d->labels) {
        fprintf(stderr, "trainer-bench: out of memory\n");
        exit(1);
    }
    /* MNIST-like sparsity: about 19% of the pixels lit. */
    for (size_t i = 0; i < (size_t)n * 784; i++)
        d->pixels[i] = tr_rng_below(&r, 100) < 19 ? (uint8_t)(1 + tr_rng_below(&r, 255)) : 0;
    for (uint32_t i = 0; i < n; i++)
        d->labels[i] = (uint8_t)tr_rng_below(&r, 10);
}

typedef struct {
    double seconds, samples_per_s;
} timing;

/* The seconds each epoch's training took, recorded by the run. */
typedef struct {
    double t[65];
    int n;
} epoch_times;

static void record_epoch(void *ctx, const tr_epoch_stats *st, long n_batches,
                         double train_seconds, long samples)
{
    (void)st;
    (void)n_batches;
    (void)samples;
    epoch_times *e = ctx;
    e->t[e->n++] = train_seconds;
}

/* Median over `epochs` epochs of training with the given threads and batch,
 * through the run loop the trainer uses (without its files). */
static timing time_training(const tr_model *proto, const tr_dataset *train, int threads,
                            int shards, int batch, int epochs)
{
    tr_model m;
    tr_error err;
    tr_run *r = NULL;
    const tr_dataset none = {0};
    /* The first epoch warms caches and pages up and is not counted. */
    const tr_run_config cfg = {.epochs = epochs + 1, .batch_size = batch, .threads = threads,
                            .shards = shards, .lr = 1e-3, .opt = tr_adam_defaults(),
                            .seed = 1};
    epoch_times times = {.n = 0};
    const tr_run_observer obs = {.epoch_end = record_epoch, .ctx = &times};
    if (tr_model_init(&m, proto->input, proto->layer, proto->n_layers, &err)) {
        fprintf(stderr, "trainer-bench: %s\n", err.msg);
        exit(1);
    }
    tr_model_init_glorot(&m, 1);
    if (tr_run_new(&r, &m, train, &none, &cfg, &err) || tr_run_fit(r, NULL, &obs, &err)) {
        fprintf(stderr, "trainer-bench: %s\n", err.msg);
        exit(1);
    }
    tr_run_free(r);
    tr_model_free(&m);
    double sec = median(times.t + 1, epochs);
    return (timing){sec, train->n / sec};
}

static double time_inference(const tr_model *proto, const tr_dataset *test, int threads)
{
    tr_model m;
    tr_error err;
    if (tr_model_init(&m, proto->input, proto->layer, proto->n_layers, &err)) {
        fprintf(stderr, "trainer-bench: %s\n", err.msg);
        exit(1);
    }
    tr_model_init_glorot(&m, 1);
    double t[7];
    for (int i = 0; i < 7; i++) {
        double loss, acc, t0 = tr_run_clock();
        if (tr_evaluate(&m, test, threads, &loss, &acc, NULL, &err)) {
            fprintf(stderr, "trainer-bench: %s\n", err.msg);
            exit(1);
        }
        t[i] = tr_run_clock() - t0;
    }
    tr_model_free(&m);
    return test->n / median(t, 7);
}

int main(int argc, char **argv)
{
    cli_set_program("trainer-bench");
    const char *dir = NULL;
    int epochs = 3, quick = 0, quick_threads = 2, quick_batch = 0;
    const char *model = "mlp";
    long samples = 0;
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'}, {"epochs", required_argument, NULL, 'e'},
        {"quick", no_argument, NULL, 'q'},      {"help", no_argument, NULL, 'h'},
        {"model", required_argument, NULL, 'm'}, {"samples", required_argument, NULL, 's'},
        {"threads", required_argument, NULL, 't'}, {"batch-size", required_argument, NULL, 'b'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'd') {
            dir = optarg;
        } else if (c == 'e') {
            long v;
            if (cli_long("--epochs", optarg, 1, 64, &v))
                return 2;
            epochs = (int)v;
        } else if (c == 'q') {
            quick = 1;
        } else if (c == 'm') {
            model = optarg;
        } else if (c == 's') {
            if (cli_long("--samples", optarg, 1, 1L << 30, &samples))
                return 2;
        } else if (c == 't' || c == 'b') {
            long v;
            if (cli_long(c == 't' ? "--threads" : "--batch-size", optarg, 1, 4096, &v))
                return 2;
            *(c == 't' ? &quick_threads : &quick_batch) = (int)v;
        } else {
            printf("Usage: trainer-bench [--data DIR] [--epochs N] [--model mlp|convnet|convnet-bn] "
                   "[--samples N] [--quick [--threads N] [--batch-size N]]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    tr_dataset all = {0}, test = {0}, train, val;
    tr_error err;
    const tr_model_preset *preset;
    if (tr_model_preset_find(model, &preset, &err)) {
        fprintf(stderr, "trainer-bench: %s\n", err.msg);
        return 2;
    }
    const int convnet = strcmp(model, "mlp") != 0;
    const char *source = "random images of MNIST's shape (MNIST not found)";
    if (!dir)
        dir = tr_dataset_default_dir();
    if (dir && !tr_dataset_load_dir(&all, dir, 0, &err) &&
        !tr_dataset_load_dir(&test, dir, 1, &err)) {
        source = dir;
    } else {
        if (dir)
            fprintf(stderr, "trainer-bench: %s; using random data\n", err.msg);
        tr_dataset_free(&all);
        tr_dataset_free(&test);
        random_dataset(&all, 60000, 1);
        random_dataset(&test, 10000, 2);
    }
    tr_dataset_split(&all, 0.2, &train, &val);
    /* The conv net costs 30 times the MLP a sample: a part of the set does. */
    if (!samples && convnet)
        samples = 6400;
    if (samples && (uint32_t)samples < train.n)
        train.n = (uint32_t)samples;
    char spec[512];
    tr_model proto;
    tr_layer layers[MODEL_MAX_LAYERS];
    int n_layers;
    const tr_tensor_shape input = {28, 28, 1};
    if (tr_model_preset_layers(preset, 10, spec, sizeof spec) ||
        tr_model_parse_layers(spec, layers, &n_layers, &err) ||
        tr_model_define(&proto, input, layers, n_layers, &err)) {
        fprintf(stderr, "trainer-bench: %s\n", err.msg);
        tr_dataset_free(&all);
        tr_dataset_free(&test);
        return 1;
    }
    char name[512];
    tr_mlp_shape shape;
    if (tr_model_mlp_shape(&proto, &shape, &err) == 0)
        tr_mlp_shape_format(&shape, name, sizeof name);
    else
        tr_model_format_layers(&proto, name, sizeof name);
    int cores = tr_train_cores();
    const double flop = train_flop_per_sample(&proto);
    if (quick) {
        const int batch = quick_batch ? quick_batch : preset->batch_size;
        timing t = time_training(&proto, &train, quick_threads, 2, batch, epochs);
        printf("samples_per_s %.0f seconds_per_epoch %.4f\n", t.samples_per_s, t.seconds);
        tr_dataset_free(&all);
        tr_dataset_free(&test);
        return 0;
    }
    double core_peak = measure_core_peak(), slowest, fastest;
    measure_peaks_together(cores, &slowest, &fastest);
    printf("trainer-bench: model %s, %u training images from %s\n", name, train.n, source);
    printf("machine: %d cores; measured fp32 FMA peak %.1f GFLOP/s per core (%.1f to %.1f "
           "with all cores busy at once)\n", cores, core_peak, slowest, fastest);
    printf("work: %.0f dense-equivalent FLOP per training sample, %.1f GFLOP per epoch\n",
           flop, flop * train.n / 1e9);
    if (!convnet)
        printf("(the engine skips zero inputs, so its real work is smaller: GFLOP/s below\n"
               " counts the dense work a framework without that would do)\n");
    printf("\n");
    printf("%7s %6s %12s %10s %10s %12s\n", "threads", "batch", "samples/s", "s/epoch",
           "GFLOP/s", "% of peak");
    const int threads[] = {1, 2, 8}, batches[] = {32, 128};
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 3; i++) {
            /* As the trainer does by default: shards = the cores, so that the
             * results are the same for every thread count. */
            timing t = time_training(&proto, &train, threads[i], cores, batches[b], epochs);
            int used = tr_train_threads_used(threads[i], cores);
            double gflops = flop * t.samples_per_s / 1e9;
            printf("%7d %6d %12.0f %10.4f %10.1f %11.1f%%\n", threads[i], batches[b],
                   t.samples_per_s, t.seconds, gflops, 100.0 * gflops / (core_peak * used));
        }
    for (int i = 0; i < 2; i++)
        printf("inference, %d thread%s: %.0f test images/s\n", i + 1, i ? "s" : "",
               time_inference(&proto, &test, i + 1));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak resident memory of this process: %.1f MB\n", ru.ru_maxrss / 1024.0);
    tr_dataset_free(&all);
    tr_dataset_free(&test);
    return 0;
}
