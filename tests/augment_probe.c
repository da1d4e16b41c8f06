/* augment_probe - runs an augmentation layer (layer_augment.c) for
 * test_augment.py to compare with its own transcription of Keras.  Reads
 *   SPEC H W C N SEED EPOCH STEP FIRST TRAINING
 * then N * H * W * C input values and as many output gradients; prints the
 * layer's N outputs (one line each), then the input gradient the backward
 * pass gives for those output gradients (one line each). */
#include <stdio.h>
#include <stdlib.h>

#include "model.h"

int main(void)
{
    char spec[256];
    int h, w, c, n, epoch, training;
    unsigned long long seed;
    long step;
    unsigned first;
    if (scanf("%255s %d %d %d %d %llu %d %ld %u %d", spec, &h, &w, &c, &n, &seed, &epoch,
              &step, &first, &training) != 10 || n < 1) {
        fprintf(stderr, "augment_probe: bad header\n");
        return 2;
    }
    char full[512];
    snprintf(full, sizeof full, "%s,flatten,dense(2,softmax)", spec);
    tr_layer layers[MODEL_MAX_LAYERS];
    int n_layers;
    tr_model m;
    tr_error err;
    if (tr_model_parse_layers(full, layers, &n_layers, &err) ||
        tr_model_init(&m, (tr_tensor_shape){h, w, c}, layers, n_layers, &err)) {
        fprintf(stderr, "augment_probe: %s\n", err.msg);
        return 2;
    }
    const long size = (long)h * w * c;
    float *x = malloc(sizeof(float) * (size_t)(n * size)), *y = malloc(sizeof(float) * (size_t)(n * size));
    float *g = malloc(sizeof(float) * (size_t)(n * size)), *dx = malloc(sizeof(float) * (size_t)(n * size));
    for (long j = 0; j < n * size; j++)
        if (scanf("%f", &x[j]) != 1)
            return 2;
    for (long j = 0; j < n * size; j++)
        if (scanf("%f", &g[j]) != 1)
            return 2;
    const tr_layer_pass pass = {.training = training, .seed = seed, .epoch = epoch, .step = step,
                             .first = first};
    const tr_layer_input in = {x, NULL, 1.0f};
    tr_layer_forward(&m.layer[0], y, &in, m.params, NULL, n, &pass);
    tr_layer_backward(&m.layer[0], dx, NULL, g, x, y, m.params, NULL, n, &pass);
    for (int s = 0; s < n; s++)
        for (long j = 0; j < size; j++)
            printf("%.9g%c", (double)y[s * size + j], j + 1 < size ? ' ' : '\n');
    for (int s = 0; s < n; s++)
        for (long j = 0; j < size; j++)
            printf("%.9g%c", (double)dx[s * size + j], j + 1 < size ? ' ' : '\n');
    free(x), free(y), free(g), free(dx);
    tr_model_free(&m);
    return 0;
}
