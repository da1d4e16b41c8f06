/* Keras' model.summary(), as the trainer prints it. */
#include <stdio.h>

#include "model.h"

/* Each layer's output shape and parameters.  A
 * stack of dense layers keeps the notebook's own lines (its Flatten). */
void model_summary(const model *m, FILE *f)
{
    const int body = m->n_layers - 1;
    mlp_shape widths;
    tr_error ignored;
    const int mlp = model_mlp_shape(m, &widths, &ignored) == 0;
    /* The name column fits the longest name ("global_avgpool2d_4
     * (GlobalAveragePooling2D)"). */
    int wide = mlp ? 22 : 26;
    char name[96], shape[48];
    for (int l = 0; l < body; l++) {
        const layer *y = &m->layer[l];
        const int len = snprintf(name, sizeof name, "%s_%d (%s)", layer_kind_name(y->kind),
                                 l + 1, layer_kind_keras_name(y->kind));
        wide = len > wide ? len : wide;
    }
    const int shapes = mlp ? 18 : 22;
    fprintf(f, mlp ? "Model: %d dense layers\n" : "Model: %d layers\n", body);
    fprintf(f, "%-*s %-*s %10s\n", wide, "Layer (type)", shapes, "Output Shape", "Param #");
    if (mlp)
        fprintf(f, "%-*s %-*s %10s\n", wide, "flatten (Flatten)", shapes, "", "0");
    size_t total = 0;
    for (int l = 0; l < body; l++) {
        const layer *y = &m->layer[l];
        size_t n = 0;
        for (int t = 0; t < y->n_tensors; t++)
            n += y->count[t];
        total += n;
        snprintf(name, sizeof name, "%s_%d (%s)", layer_kind_name(y->kind), l + 1,
                 layer_kind_keras_name(y->kind));
        if (y->out.h == 1 && y->out.w == 1)
            snprintf(shape, sizeof shape, "(None, %d)", y->out.c);
        else
            snprintf(shape, sizeof shape, "(None, %d, %d, %d)", y->out.h, y->out.w, y->out.c);
        fprintf(f, "%-*s %-*s %10zu\n", wide, name, shapes, shape, n);
    }
    char digits[32], grouped[48];
    int len = snprintf(digits, sizeof digits, "%zu", total), k = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            grouped[k++] = ',';
        grouped[k++] = digits[i];
    }
    grouped[k] = '\0';
    fprintf(f, "Total params: %s\n\n", grouped);
}
