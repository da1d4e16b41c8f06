/* trainer export - a trained model in other programs' formats (export.h). */
#include "commands.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ckpt.h"
#include "export.h"
#include "fileio.h"

#define EXIT_USAGE 2

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: trainer export [--model FILE] [--onnx OUT] [--safetensors OUT]\n"
            "Write a trained model for other programs.\n\n"
            "  --model FILE        the model (default: model.ckpt)\n"
            "  --onnx OUT          the model for ONNX runtimes (opset 13): input\n"
            "                      [N][C][H][W] floats, pixel / 255; output the class\n"
            "                      probabilities\n"
            "  --safetensors OUT   its weights as PyTorch's nn.Sequential of the same\n"
            "                      layers names them (the Sequential itself is in the\n"
            "                      file's metadata; see the README)\n"
            "  --help              show this help\n\n"
            "Exit status: 0 on success, 1 for a model or output problem, 2 for a bad\n"
            "command line.\n");
}

int export_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"model", required_argument, NULL, 'm'},
        {"safetensors", required_argument, NULL, 's'}, {"onnx", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *model_path = "model.ckpt", *safetensors = NULL, *onnx = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 's': safetensors = optarg; break;
        case 'o': onnx = optarg; break;
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
    if (!safetensors && !onnx) {
        fprintf(stderr, "trainer export: no output asked for: --onnx OUT or --safetensors "
                "OUT (see trainer export --help)\n");
        return EXIT_USAGE;
    }
    tr_error err;
    model m;
    if (ckpt_load(&m, model_path, &err)) {
        fprintf(stderr, "trainer export: %s\n", err.msg);
        return EXIT_FAILURE;
    }
    typedef int (*encoder)(const model *, uint8_t **, size_t *, tr_error *);
    const struct {
        const char *path;
        encoder encode;
    } outputs[] = {{onnx, export_onnx}, {safetensors, export_safetensors}};
    int rc = 0;
    for (size_t k = 0; k < sizeof outputs / sizeof *outputs && !rc; k++) {
        if (!outputs[k].path)
            continue;
        uint8_t *data = NULL;
        size_t len = 0;
        rc = outputs[k].encode(&m, &data, &len, &err) ||
             file_write_atomic(outputs[k].path, data, len, &err);
        if (rc)
            fprintf(stderr, "trainer export: %s\n", err.msg);
        else
            printf("wrote %s (%zu bytes)\n", outputs[k].path, len);
        free(data);
    }
    model_free(&m);
    return rc ? EXIT_FAILURE : EXIT_SUCCESS;
}
