/* Keras' model.summary(), as the trainer prints it. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

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

/* Keras' default name of layer l, "max_pooling2d_1 (MaxPooling2D)", into
 * buf: the class name in snake case (keras.src.utils.naming.to_snake_case:
 * an underscore before a capital that follows a small letter or starts a
 * capitalized word), then _1, _2, ... for the second and later layers of the
 * class (naming.uniquify), as a fresh Keras session names them. */
static int keras_layer_name(char *buf, size_t size, const tr_model *m, int l)
{
    const char *cls = tr_layer_kind_keras_name(m->layer[l].kind);
    char snake[64];
    size_t k = 0;
    for (size_t i = 0; cls[i] && k + 2 < sizeof snake; i++) {
        const unsigned char c = (unsigned char)cls[i];
        if (i > 0 && isupper(c) &&
            (islower((unsigned char)cls[i - 1]) || islower((unsigned char)cls[i + 1])))
            snake[k++] = '_';
        snake[k++] = (char)tolower(c);
    }
    snake[k] = '\0';
    int before = 0;
    for (int j = 0; j < l; j++)
        before += m->layer[j].kind == m->layer[l].kind;
    if (before)
        return snprintf(buf, size, "%s_%d (%s)", snake, before, cls);
    return snprintf(buf, size, "%s (%s)", snake, cls);
}

/* Each layer's output shape and parameters.  A
 * stack of dense layers keeps the notebook's own lines (its Flatten). */
void tr_model_summary(const tr_model *m, FILE *f)
{
    const int body = m->n_layers - 1;
    tr_mlp_shape widths;
    tr_error ignored;
    const int mlp = tr_model_mlp_shape(m, &widths, &ignored) == 0;
    /* The name column fits the longest name ("global_average_pooling2d_1
     * (GlobalAveragePooling2D)"). */
    int wide = mlp ? 22 : 26;
    char name[96], shape[48];
    for (int l = 0; l < body; l++) {
        const int len = keras_layer_name(name, sizeof name, m, l);
        wide = len > wide ? len : wide;
    }
    const int shapes = mlp ? 18 : 22;
    fprintf(f, mlp ? "Model: %d dense layers\n" : "Model: %d layers\n", body);
    fprintf(f, "%-*s %-*s %10s\n", wide, "Layer (type)", shapes, "Output Shape", "Param #");
    if (mlp)
        fprintf(f, "%-*s %-*s %10s\n", wide, "flatten (Flatten)", shapes, "", "0");
    size_t total = 0, trained = 0;
    for (int l = 0; l < body; l++) {
        const tr_layer *y = &m->layer[l];
        size_t n = 0;
        for (int t = 0; t < y->n_tensors; t++) {
            n += y->count[t];
            trained += y->trainable[t] ? y->count[t] : 0;
        }
        total += n;
        keras_layer_name(name, sizeof name, m, l);
        if (y->out.h == 1 && y->out.w == 1)
            snprintf(shape, sizeof shape, "(None, %d)", y->out.c);
        else
            snprintf(shape, sizeof shape, "(None, %d, %d, %d)", y->out.h, y->out.w, y->out.c);
        fprintf(f, "%-*s %-*s %10zu\n", wide, name, shapes, shape, n);
    }
    char a[48], b[48], c[48];
    fprintf(f, "Total params: %s\nTrainable params: %s\nNon-trainable params: %s\n",
            grouped(total, a), grouped(trained, b), grouped(total - trained, c));
    if (m->class_names[0]) {
        char name[CLASS_NAME_MAX];
        fprintf(f, "Classes:");
        for (int k = 0; k < tr_model_classes(m); k++)
            fprintf(f, "%s %d %s", k ? "," : "", k, tr_class_name(m->class_names, k, name));
        fprintf(f, "\n");
    }
    fprintf(f, "\n");
}
