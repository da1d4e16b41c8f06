/* trainer export - a trained model in other programs' formats (export.h). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "commands.h"

#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt.h"
#include "export.h"
#include "fileio.h"
#include "run.h"
#include "webpage.h"

#define EXIT_USAGE 2

/* ONNX Runtime Web's files the page loads: its WebAssembly build. */
static const char *const ort_files[] = {"ort.wasm.min.js", "ort-wasm-simd-threaded.mjs",
                                        "ort-wasm-simd-threaded.wasm"};
#define ORT_FILE_MAX_BYTES ((size_t)1 << 27)

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: trainer export [--model FILE] [--onnx OUT] [--safetensors OUT]\n"
            "                      [--web DIR [--onnxruntime-web ORT]]\n"
            "Write a trained model for other programs.\n\n"
            "  --model FILE        the model (default: model.ckpt)\n"
            "  --onnx OUT          the model for ONNX runtimes (opset 13): input\n"
            "                      [N][C][H][W] floats, pixel / 255; output the class\n"
            "                      probabilities\n"
            "  --safetensors OUT   its weights as PyTorch's nn.Sequential of the same\n"
            "                      layers names them (the Sequential itself is in the\n"
            "                      file's metadata; see docs/predict-export.md)\n"
            "  --web DIR           a page to draw a digit and see the model's verdict:\n"
            "                      serve it with python3 -m http.server -d DIR\n"
            "  --onnxruntime-web ORT  the folder of ONNX Runtime Web's files the page\n"
            "                      runs the model with (default: data/onnxruntime-web\n"
            "                      here, else %s/data/onnxruntime-web;\n"
            "                      tools/fetch-onnxruntime-web puts them there)\n"
            "  --help              show this help\n\n"
            "Exit status: 0 on success, 1 for a model or output problem, 2 for a bad\n"
            "command line.\n", TRAINER_SOURCE_DIR);
}

/* The folder of ONNX Runtime Web's files: ort, else the first default that
 * holds them. */
static int find_ort(const char *ort, char *dir, size_t size, tr_error *err)
{
    const char *const candidates[] = {ort, "data/onnxruntime-web",
                                      TRAINER_SOURCE_DIR "/data/onnxruntime-web"};
    for (size_t k = ort ? 0 : 1; k < sizeof candidates / sizeof *candidates; k++) {
        struct stat st;
        snprintf(dir, size, "%s/%s", candidates[k], ort_files[0]);
        if (stat(dir, &st) == 0 && S_ISREG(st.st_mode)) {
            snprintf(dir, size, "%s", candidates[k]);
            return 0;
        }
        if (ort)
            return tr_error_set(err, "%s: no %s there: not ONNX Runtime Web's files (fetch them "
                                "with tools/fetch-onnxruntime-web)", ort, ort_files[0]);
    }
    return tr_error_set(err, "ONNX Runtime Web is not in data/onnxruntime-web nor in "
                        "%s/data/onnxruntime-web: fetch it with tools/fetch-onnxruntime-web, "
                        "or name its folder with --onnxruntime-web", TRAINER_SOURCE_DIR);
}

/* Adds dir/name to the batch b. */
static int add_in(tr_file_batch *b, const char *dir, const char *name, const void *data,
                  size_t len, tr_error *err)
{
    char path[4096];
    return tr_run_output_path(path, sizeof path, dir, name, err) ||
           tr_file_batch_add(b, path, data, len, err);
}

/* The drawing page in dir: the page's files, the model as ONNX and its
 * shape in model.json, and ONNX Runtime Web's files copied from ort_dir.
 * The files replace an earlier page's together or not at all. */
static int export_web(const tr_model *m, const char *dir, const char *ort, tr_error *err)
{
    char ort_dir[4096];
    if (find_ort(ort, ort_dir, sizeof ort_dir, err) || tr_file_make_dirs(dir, err))
        return -1;
    tr_file_batch b = {0};
    for (size_t k = 0; k < sizeof ort_files / sizeof *ort_files; k++) {
        char path[4096 + 64];
        uint8_t *data;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", ort_dir, ort_files[k]);
        if (tr_file_read_all(path, ORT_FILE_MAX_BYTES, &data, &len, err)) {
            tr_file_batch_abort(&b);
            return -1;
        }
        const int rc = add_in(&b, dir, ort_files[k], data, len, err);
        free(data);
        if (rc)
            return -1;
    }
    char layers[4096], names[2 * CLASS_NAMES_MAX + 8] = "null";
    char info[sizeof layers + sizeof names + 256];
    if (tr_model_format_layers(m, layers, sizeof layers)) {
        tr_file_batch_abort(&b);
        return tr_error_set(err, "the model's layers are longer than %zu bytes", sizeof layers);
    }
    if (m->class_names[0] && tr_class_names_json(m->class_names, names, sizeof names)) {
        tr_file_batch_abort(&b);
        return tr_error_set(err, "the class names are too long for model.json");
    }
    const int n = snprintf(info, sizeof info, "{\"classes\": %d, \"height\": %d, \"width\": %d, "
                           "\"channels\": %d, \"layers\": \"%s\", \"names\": %s}\n",
                           tr_model_classes(m), m->input.h, m->input.w, m->input.c, layers, names);
    uint8_t *onnx = NULL;
    size_t len = 0;
    if (add_in(&b, dir, "model.json", info, (size_t)n, err))
        return -1;
    if (tr_export_onnx(m, &onnx, &len, err)) {
        tr_file_batch_abort(&b);
        return -1;
    }
    int rc = add_in(&b, dir, "model.onnx", onnx, len, err);
    free(onnx);
    for (int k = 0; k < web_file_count && !rc; k++)
        rc = add_in(&b, dir, web_files[k].name, web_files[k].data, web_files[k].len, err);
    return rc ? -1 : tr_file_batch_commit(&b, err);
}

/* path with its folder resolved (symbolic links, "..") into buf; the path
 * as given when its folder does not exist. */
static void resolved(char *buf, size_t size, const char *path)
{
    char dir[4096], real[PATH_MAX];
    const char *slash = strrchr(path, '/');
    const char *name = slash ? slash + 1 : path;
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (slash == path)
        snprintf(dir, sizeof dir, "/");
    if (realpath(dir, real))
        snprintf(buf, size, "%s/%s", real, name);
    else
        snprintf(buf, size, "%s", path);
}

/* Whether paths a and b name the same file: the same inode when both
 * exist, else the same resolved folder and name. */
static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char ra[PATH_MAX + 4096], rb[PATH_MAX + 4096];
    resolved(ra, sizeof ra, a);
    resolved(rb, sizeof rb, b);
    return strcmp(ra, rb) == 0;
}

/* Refuses an output that is the model read or another output: writing it
 * would destroy the input, or keep one of the two silently. */
static int check_outputs(const char *model_path, const char *const *out, int n,
                         const char *web)
{
    char in_web[4096];
    for (int k = 0; k < n; k++) {
        if (!out[k])
            continue;
        const char *clash = same_file(out[k], model_path) ? "the model read" : NULL;
        for (int j = 0; j < k && !clash; j++)
            clash = out[j] && same_file(out[k], out[j]) ? out[j] : NULL;
        if (!clash && web && snprintf(in_web, sizeof in_web, "%s/model.onnx", web) > 0 &&
            same_file(out[k], in_web))
            clash = "the page's model.onnx";
        if (clash) {
            fprintf(stderr, "trainer export: %s is also %s: give each output its own file "
                    "(see trainer export --help)\n", out[k], clash);
            return -1;
        }
    }
    return 0;
}

int export_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"safetensors", required_argument, NULL, 's'}, {"onnx", required_argument, NULL, 'o'},
        {"web", required_argument, NULL, 'w'}, {"onnxruntime-web", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_path = "model.ckpt", *safetensors = NULL, *onnx = NULL, *web = NULL;
    const char *ort = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 's': safetensors = optarg; break;
        case 'o': onnx = optarg; break;
        case 'w': web = optarg; break;
        case 'r': ort = optarg; break;
        case 'h': usage(stdout); return EXIT_SUCCESS;
        default:
            fprintf(stderr, "trainer export: %s '%s' (see trainer export --help)\n",
                    c == ':' ? "a value is missing after" : "unknown option",
                    argv[optind - 1]);
            return EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "trainer export: unexpected argument '%s' (see trainer export "
                "--help)\n", argv[optind]);
        return EXIT_USAGE;
    }
    if (!safetensors && !onnx && !web) {
        fprintf(stderr, "trainer export: no output asked for: --onnx OUT, --safetensors "
                "OUT or --web DIR (see trainer export --help)\n");
        return EXIT_USAGE;
    }
    const struct {
        const char *flag, *value;
    } named[] = {{"--model", model_path}, {"--onnx", onnx}, {"--safetensors", safetensors},
                 {"--web", web}, {"--onnxruntime-web", ort}};
    for (size_t k = 0; k < sizeof named / sizeof *named; k++)
        if (named[k].value && !named[k].value[0]) {
            fprintf(stderr, "trainer export: %s needs a path, not '' (see trainer export "
                    "--help)\n", named[k].flag);
            return EXIT_USAGE;
        }
    if (check_outputs(model_path, (const char *[]){onnx, safetensors}, 2, web))
        return EXIT_USAGE;
    if (ort && !web) {
        fprintf(stderr, "trainer export: --onnxruntime-web is for --web (see trainer export "
                "--help)\n");
        return EXIT_USAGE;
    }
    tr_error err;
    tr_model m;
    if (tr_ckpt_load(&m, model_path, &err)) {
        fprintf(stderr, "trainer export: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    typedef int (*encoder)(const tr_model *, uint8_t **, size_t *, tr_error *);
    const struct {
        const char *path;
        encoder encode;
    } outputs[] = {{onnx, tr_export_onnx}, {safetensors, tr_export_safetensors}};
    int rc = 0;
    for (size_t k = 0; k < sizeof outputs / sizeof *outputs && !rc; k++) {
        if (!outputs[k].path)
            continue;
        uint8_t *data = NULL;
        size_t len = 0;
        rc = outputs[k].encode(&m, &data, &len, &err) ||
             tr_file_write_atomic(outputs[k].path, data, len, &err);
        if (rc)
            fprintf(stderr, "trainer export: %s\n", err.msg);
        else
            printf("wrote %s (%zu bytes)\n", outputs[k].path, len);
        free(data);
    }
    if (!rc && web) {
        rc = export_web(&m, web, ort, &err);
        if (rc)
            fprintf(stderr, "trainer export: %s\n", err.msg);
        else
            printf("wrote the drawing page in %s: python3 -m http.server -d %s, then open "
                   "http://localhost:8000\n", web, web);
    }
    tr_model_free(&m);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
