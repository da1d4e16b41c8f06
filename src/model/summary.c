/* Keras' model.summary(), as the trainer prints it. */
#include <stdio.h>

#include "model.h"

/* n with commas between thousands, as Keras prints counts, into buf. */
static const char *grouped(size_t n, char buf[48])
{
    char digits[32];
    const int len = snprintf(digits, sizeof digits, "%zu", n);
    int k = 0;
    for (int i = 0; i < len; i++) {
        if (i && (len - i) % 3 == 0)
            buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

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
    size_t total = 0, trained = 0;
    for (int l = 0; l < body; l++) {
        const layer *y = &m->layer[l];
        size_t n = 0;
        for (int t = 0; t < y->n_tensors; t++) {
            n += y->count[t];
            trained += y->trainable[t] ? y->count[t] : 0;
        }
        total += n;
        snprintf(name, sizeof name, "%s_%d (%s)", layer_kind_name(y->kind), l + 1,
                 layer_kind_keras_name(y->kind));
        if (y->out.h == 1 && y->out.w == 1)
            snprintf(shape, sizeof shape, "(None, %d)", y->out.c);
        else
            snprintf(shape, sizeof shape, "(None, %d, %d, %d)", y->out.h, y->out.w, y->out.c);
        fprintf(f, "%-*s %-*s %10zu\n", wide, name, shapes, shape, n);
    }
    char a[48], b[48], c[48];
    fprintf(f, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n\n",
            grouped(total, a), grouped(trained, b), grouped(total - trained, c));
}
