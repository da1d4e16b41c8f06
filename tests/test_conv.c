/* Conv2D, MaxPooling2D, Flatten and Dropout: the fast conv passes against
 * the plain kernels, and the gradients of whole stacks, through the layer
 * interface, against central differences of a loss recomputed in double by
 * an independent plain forward pass; the training step's gradient of a
 * convnet equals the whole-batch one and is the same bits on 1 and 3
 * threads. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/conv.h"
#include "model/dense.h"
#include "model.h"
#include "rng.h"
#include "testutil.h"
#include "train.h"

static float max_rel_diff(const float *a, const float *b, long n)
{
    float worst = 0.0f;
    for (long j = 0; j < n; j++)
        worst = fmaxf(worst, fabsf(a[j] - b[j]) / fmaxf(1.0f, fabsf(b[j])));
    return worst;
}

/* A layer of a spec ("conv2d(4,3,same,relu)") in *l, nothing derived yet. */
static void spec_layer(tr_layer *l, const char *spec)
{
    tr_layer parsed[MODEL_MAX_LAYERS];
    int n;
    tr_error err;
    CHECK(tr_model_parse_layers(spec, parsed, &n, &err) == 0, "%s: %s", spec, err.msg);
    *l = parsed[0];
}

static int is(const tr_layer *l, const char *kind)
{
    return strcmp(tr_layer_kind_name(l->kind), kind) == 0;
}

/* The hyper-parameter words (ckpt.h): conv2d filters, kernel, same, relu;
 * dense units, relu; maxpool2d pool; dropout the rate's bits. */
static int word(const tr_layer *l, int k)
{
    return (int)l->hp[k];
}

static double dropout_rate(const tr_layer *l)
{
    float r;
    memcpy(&r, &l->hp[0], sizeof r);
    return r;
}

static void fill(tr_rng *r, float *x, long n, int zeros)
{
    for (long j = 0; j < n; j++)
        x[j] = zeros && tr_rng_below(r, 3) == 0 ? 0.0f : 2.0f * tr_rng_uniform(r) - 1.0f;
}

/* One conv layer's passes, through the layer interface, against the plain
 * kernels. */
static void check_conv_layer(int h, int w, int c, int k, int same, int f, int relu, int n)
{
    tr_rng r;
    tr_rng_seed(&r, (uint64_t)(h * 131 + w * 17 + c * 7 + k + same * 3 + f), 5);
    char spec[96];
    snprintf(spec, sizeof spec, "conv2d(%d,%d,%s,%s),dense(10,softmax)", f, k,
             same ? "same" : "valid", relu ? "relu" : "linear");
    tr_layer l;
    spec_layer(&l, spec);
    l.index = 1;
    l.in = (tr_tensor_shape){h, w, c};
    tr_error err;
    CHECK(tr_layer_build(&l, &err) == 0, "%s", err.msg);
    l.offset[DENSE_W] = 0;
    l.offset[DENSE_B] = (l.count[DENSE_W] + 15) / 16 * 16;
    const long in_n = (long)n * h * w * c, out_n = (long)n * tr_tensor_size(l.out);
    float *params = tr_model_buffer_new(l.offset[DENSE_B] + (size_t)f);
    float *grad = tr_model_buffer_new(l.offset[DENSE_B] + (size_t)f);
    float *x = malloc(sizeof(float) * (size_t)in_n), *out = malloc(sizeof(float) * (size_t)out_n);
    float *ref = malloc(sizeof(float) * (size_t)out_n), *d_out = malloc(sizeof(float) * (size_t)out_n);
    float *d_in = malloc(sizeof(float) * (size_t)in_n), *d_in_ref = malloc(sizeof(float) * (size_t)in_n);
    float *d_w = malloc(sizeof(float) * l.count[DENSE_W]), *d_b = malloc(sizeof(float) * (size_t)f);
    void *work = tr_model_buffer_new(tr_layer_work_bytes(&l, n) / sizeof(float) + 16);
    tr_layer_work_init(&l, work, n);
    fill(&r, params, (long)l.count[DENSE_W], 0);
    fill(&r, params + l.offset[DENSE_B], f, 0);
    fill(&r, x, in_n, 1);
    fill(&r, d_out, out_n, 0);
    const tr_layer_input in = {x, NULL, 1.0f};
    tr_layer_forward(&l, out, &in, params, work, n, NULL);
    const int pad = same ? (k - 1) / 2 : 0;
    tr_conv2d_forward_ref(ref, x, params, params + l.offset[DENSE_B], n, h, w, c, k, pad, f, relu);
    const float fe = max_rel_diff(out, ref, out_n);
    /* The ReLU's derivative as the layer applies it, for the plain kernel. */
    float *d_pre = malloc(sizeof(float) * (size_t)out_n);
    for (long j = 0; j < out_n; j++)
        d_pre[j] = relu && out[j] <= 0.0f ? 0.0f : d_out[j];
    tr_layer_backward(&l, d_in, grad, d_out, x, out, params, work, n, NULL);
    tr_conv2d_backward_ref(d_in_ref, d_w, d_b, d_pre, x, params, n, h, w, c, k, pad, f);
    const float be = fmaxf(max_rel_diff(d_in, d_in_ref, in_n),
                           fmaxf(max_rel_diff(grad, d_w, (long)l.count[DENSE_W]),
                                 max_rel_diff(grad + l.offset[DENSE_B], d_b, f)));
    printf("conv2d %dx%dx%d k%d %s f%d%s n%d: forward %.2g, backward %.2g\n", h, w, c, k,
           same ? "same" : "valid", f, relu ? " relu" : "", n, fe, be);
    CHECK(fe < 1e-5f && be < 1e-5f, "conv2d %dx%dx%d k%d: forward %g, backward %g", h, w, c, k,
          fe, be);
    free(x), free(out), free(ref), free(d_out), free(d_in), free(d_in_ref), free(d_w);
    free(d_b), free(d_pre);
    tr_model_buffer_free(params), tr_model_buffer_free(grad), tr_model_buffer_free(work);
}

/* The in-place kernels of a valid convolution give the bits of the dense
 * kernels on tr_conv_im2col's rows, the weight gradient also when it is added up
 * in two calls. */
static void check_valid_kernels(int h, int w, int c, int k, int f, int relu, int n)
{
    tr_rng r;
    tr_rng_seed(&r, (uint64_t)(h * 31 + c * 7 + k + f), 9);
    const int oh = h - k + 1, ow = w - k + 1, kc = k * k * c;
    const long pixels = (long)n * oh * ow, in_n = (long)n * h * w * c;
    float *x = malloc(sizeof(float) * (size_t)in_n), *wk = malloc(sizeof(float) * (size_t)kc * f);
    float *b = malloc(sizeof(float) * (size_t)f), *wt = malloc(sizeof(float) * (size_t)kc * f);
    float *patches = malloc(sizeof(float) * (size_t)(pixels * kc));
    float *y1 = malloc(sizeof(float) * (size_t)(pixels * f)), *y2 = malloc(sizeof(float) * (size_t)(pixels * f));
    float *dw1 = malloc(sizeof(float) * (size_t)kc * f), *dw2 = malloc(sizeof(float) * (size_t)kc * f);
    float *db1 = malloc(sizeof(float) * (size_t)f), *db2 = malloc(sizeof(float) * (size_t)f);
    int *base = malloc(sizeof(int) * (size_t)pixels);
    fill(&r, x, in_n, 1);
    fill(&r, wk, (long)kc * f, 0);
    fill(&r, b, f, 0);
    tr_conv_patch_bases(base, n, h, w, c, k);
    tr_conv_im2col(patches, x, n, h, w, c, k, 0);
    tr_dense_forward_small(y1, patches, wk, b, (int)pixels, kc, f, relu);
    tr_conv2d_forward_valid(y2, x, base, wk, b, n, h, w, c, k, f, relu);
    CHECK(memcmp(y1, y2, sizeof(float) * (size_t)(pixels * f)) == 0,
          "conv2d_forward_valid %dx%dx%d k%d f%d: not the bits of im2col + dense", h, w, c, k, f);
    tr_dense_backward_small(NULL, dw1, db1, y1, patches, wk, wt, (int)pixels, kc, f);
    const int first = n / 2;
    const long split = (long)first * h * w * c, done = (long)first * oh * ow;
    tr_conv2d_weight_gradient_valid(dw2, db2, y1, x, base, first, h, w, c, k, f, 0);
    tr_conv2d_weight_gradient_valid(dw2, db2, y1 + done * f, x + split, base, n - first, h, w, c,
                                    k, f, 1);
    CHECK(memcmp(dw1, dw2, sizeof(float) * (size_t)kc * f) == 0 &&
              memcmp(db1, db2, sizeof(float) * (size_t)f) == 0,
          "conv2d_weight_gradient_valid %dx%dx%d k%d f%d: not the bits of im2col + dense", h,
          w, c, k, f);
    free(x), free(wk), free(b), free(wt), free(patches), free(y1), free(y2), free(dw1);
    free(dw2), free(db1), free(db2), free(base);
}

/* MaxPooling2D against a plain kernel that records where each maximum was
 * and sends the gradient there; values from a few levels, so that ties are
 * many, with -0 beside +0. */
static void check_maxpool_against_plain(int n, int h, int w, int c, int p)
{
    tr_rng r;
    tr_rng_seed(&r, (uint64_t)(n * 7 + h * 5 + c + p), 11);
    const int oh = h / p, ow = w / p;
    const long in_n = (long)n * h * w * c, out_n = (long)n * oh * ow * c;
    static const float levels[] = {-1.0f, -0.0f, 0.0f, 0.5f, 2.0f};
    float *x = malloc(sizeof(float) * (size_t)in_n), *out = malloc(sizeof(float) * (size_t)out_n);
    float *ref = malloc(sizeof(float) * (size_t)out_n), *g = malloc(sizeof(float) * (size_t)out_n);
    float *d = malloc(sizeof(float) * (size_t)in_n), *d_ref = calloc((size_t)in_n, sizeof(float));
    for (long j = 0; j < in_n; j++)
        x[j] = levels[tr_rng_below(&r, 5)];
    fill(&r, g, out_n, 0);
    tr_maxpool_forward(out, x, n, h, w, c, p);
    for (int s = 0; s < n; s++)
        for (int y = 0; y < oh; y++)
            for (int xx = 0; xx < ow; xx++)
                for (int ch = 0; ch < c; ch++) {
                    long best = -1;
                    for (int py = 0; py < p; py++)
                        for (int px = 0; px < p; px++) {
                            const long at = (((long)s * h + y * p + py) * w + xx * p + px) * c + ch;
                            if (best < 0 || x[at] > x[best])
                                best = at;
                        }
                    const long o = (((long)s * oh + y) * ow + xx) * c + ch;
                    ref[o] = x[best];
                    d_ref[best] = g[o];
                }
    tr_maxpool_backward(d, g, x, out, n, h, w, c, p, 0);
    CHECK(memcmp(out, ref, sizeof(float) * (size_t)out_n) == 0,
          "maxpool_forward %dx%dx%d p%d: not the plain kernel's maxima", h, w, c, p);
    CHECK(memcmp(d, d_ref, sizeof(float) * (size_t)in_n) == 0,
          "maxpool_backward %dx%dx%d p%d: the gradient is not where the plain kernel's "
          "maxima were", h, w, c, p);
    /* After a ReLU (as conv2d's keeps -0): the derivative applied by the
     * pooling gives the bits of applying it to the pooling's gradient. */
    for (long j = 0; j < in_n; j++)
        x[j] = x[j] < 0.0f ? 0.0f : x[j];
    tr_maxpool_forward(out, x, n, h, w, c, p);
    tr_maxpool_backward(d_ref, g, x, out, n, h, w, c, p, 0);
    tr_dense_relu_backward(d_ref, x, in_n);
    tr_maxpool_backward(d, g, x, out, n, h, w, c, p, 1);
    CHECK(memcmp(d, d_ref, sizeof(float) * (size_t)in_n) == 0,
          "maxpool_backward %dx%dx%d p%d with the ReLU before it: not the bits of the "
          "ReLU's derivative applied after it", h, w, c, p);
    free(x), free(out), free(ref), free(g), free(d), free(d_ref);
}

static void check_maxpool(void)
{
    /* 5x5 with p 2: the last row and column are dropped; ties go to the
     * first in row-major order. */
    float in[5 * 5], out[4];
    for (int j = 0; j < 25; j++)
        in[j] = (float)(j % 7);
    in[0] = in[1] = 9.0f;
    in[24] = 100.0f;
    tr_maxpool_forward(out, in, 1, 5, 5, 1, 2);
    CHECK(out[0] == 9.0f, "the first window's maximum: %g", out[0]);
    CHECK(out[3] == fmaxf(fmaxf(in[12], in[13]), fmaxf(in[17], in[18])),
          "the last window ignores the dropped row and column");
    float d_out[4] = {1, 2, 3, 4}, d_in[25];
    for (int j = 0; j < 25; j++)
        d_in[j] = 7.0f;
    tr_maxpool_backward(d_in, d_out, in, out, 1, 5, 5, 1, 2, 0);
    float sum = 0.0f;
    for (int j = 0; j < 25; j++)
        sum += d_in[j];
    CHECK(sum == 10.0f && d_in[0] == 1.0f && d_in[1] == 0.0f && d_in[24] == 0.0f,
          "maxpool's gradient goes to the first of tied maxima, 0 elsewhere");
    check_maxpool_against_plain(3, 6, 6, 5, 2);
    check_maxpool_against_plain(2, 11, 11, 70, 2);
    check_maxpool_against_plain(2, 8, 7, 3, 3);
}

/* ---- the double-precision reference of a stack ------------------------------ */

enum { N = 5 };

typedef struct {
    const tr_model *m;
    const uint8_t *const *masks; /* per layer: the dropout mask the engine drew, or NULL */
    uint8_t *pattern;            /* ReLU signs and pooling choices, to detect kinks */
    size_t pattern_len;
} reference;

/* Mean cross-entropy of samples x ([N][input]) with labels y, for parameters
 * p (the model's layout, in double). */
static double ref_loss(reference *ref, const double *p, const float *x, const uint8_t *y)
{
    const tr_model *m = ref->m;
    size_t mark = 0;
    double total = 0.0;
    for (int s = 0; s < N; s++) {
        const long in_size = tr_tensor_size(m->input);
        double *a = malloc(sizeof(double) * (size_t)in_size);
        for (long i = 0; i < in_size; i++)
            a[i] = x[s * in_size + i];
        for (int li = 0; li < m->n_layers - 1; li++) {
            const tr_layer *l = &m->layer[li];
            const int h = l->in.h, w = l->in.w, c = l->in.c;
            const long out_size = tr_tensor_size(l->out);
            double *b = calloc((size_t)out_size, sizeof(double));
            if (is(l, "conv2d")) {
                const int k = word(l, 1), f = word(l, 0), pad = word(l, 2) ? (k - 1) / 2 : 0;
                const int relu = word(l, 3);
                for (int oy = 0; oy < l->out.h; oy++)
                    for (int ox = 0; ox < l->out.w; ox++)
                        for (int o = 0; o < f; o++) {
                            double z = p[l->offset[DENSE_B] + (size_t)o];
                            for (int ky = 0; ky < k; ky++)
                                for (int kx = 0; kx < k; kx++) {
                                    const int iy = oy + ky - pad, ix = ox + kx - pad;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                        continue;
                                    for (int ch = 0; ch < c; ch++)
                                        z += a[((long)iy * w + ix) * c + ch] *
                                             p[l->offset[DENSE_W] +
                                               (size_t)(((ky * k + kx) * c + ch) * f + o)];
                                }
                            b[((long)oy * l->out.w + ox) * f + o] = relu && z < 0 ? 0 : z;
                            if (relu && ref->pattern)
                                ref->pattern[mark++] = z > 0;
                        }
            } else if (is(l, "maxpool2d")) {
                const int q = word(l, 0);
                for (int oy = 0; oy < l->out.h; oy++)
                    for (int ox = 0; ox < l->out.w; ox++)
                        for (int ch = 0; ch < c; ch++) {
                            int best = 0;
                            double v = -INFINITY;
                            for (int j = 0; j < q * q; j++) {
                                const double u =
                                    a[((long)(oy * q + j / q) * w + ox * q + j % q) * c + ch];
                                if (u > v) {
                                    v = u;
                                    best = j;
                                }
                            }
                            b[((long)oy * l->out.w + ox) * c + ch] = v;
                            if (ref->pattern)
                                ref->pattern[mark++] = (uint8_t)best;
                        }
            } else if (is(l, "avgpool2d")) {
                const int q = word(l, 0);
                for (int oy = 0; oy < l->out.h; oy++)
                    for (int ox = 0; ox < l->out.w; ox++)
                        for (int ch = 0; ch < c; ch++) {
                            double v = 0.0;
                            for (int j = 0; j < q * q; j++)
                                v += a[((long)(oy * q + j / q) * w + ox * q + j % q) * c + ch];
                            b[((long)oy * l->out.w + ox) * c + ch] = v / (q * q);
                        }
            } else if (is(l, "global_avgpool2d")) {
                for (int ch = 0; ch < c; ch++) {
                    double v = 0.0;
                    for (long j = 0; j < (long)h * w; j++)
                        v += a[j * c + ch];
                    b[ch] = v / ((double)h * w);
                }
            } else if (is(l, "flatten")) {
                memcpy(b, a, sizeof(double) * (size_t)out_size);
            } else if (is(l, "dropout")) {
                for (long j = 0; j < out_size; j++)
                    b[j] = ref->masks[li][s * out_size + j] ? a[j] / (1.0 - dropout_rate(l))
                                                            : 0.0;
            } else { /* dense */
                const long in_n = tr_tensor_size(l->in);
                const int units = word(l, 0), relu = word(l, 1);
                for (int o = 0; o < units; o++) {
                    double z = p[l->offset[DENSE_B] + (size_t)o];
                    for (long i = 0; i < in_n; i++)
                        z += a[i] * p[l->offset[DENSE_W] + (size_t)(i * units + o)];
                    b[o] = relu && z < 0 ? 0 : z;
                    if (relu && ref->pattern)
                        ref->pattern[mark++] = z > 0;
                }
            }
            free(a);
            a = b;
        }
        const int classes = tr_model_classes(m);
        double mx = a[0], sum = 0.0;
        for (int k = 1; k < classes; k++)
            mx = fmax(mx, a[k]);
        for (int k = 0; k < classes; k++)
            sum += exp(a[k] - mx);
        total += log(sum) + mx - a[y[s]];
        free(a);
    }
    ref->pattern_len = mark;
    return total / N;
}

static double rel_err(double a, double b)
{
    return fabs(a - b) / fmax(fabs(a) + fabs(b), 1e-4);
}

/* The central difference of the loss at p along dir, with the largest step
 * of 1e-4, 1e-5, ... that changes no ReLU's sign and no pooling choice. */
static double slope(reference *ref, const double *p, const double *dir, const float *x,
                    const uint8_t *y)
{
    const size_t len = ref->m->len;
    double *q = malloc(sizeof(double) * len);
    uint8_t *up = calloc(1 << 20, 1), *down = calloc(1 << 20, 1);
    double fd = NAN;
    for (double h = 1e-4; h >= 1e-8; h /= 10) {
        for (size_t j = 0; j < len; j++)
            q[j] = p[j] + h * dir[j];
        ref->pattern = up;
        const double lu = ref_loss(ref, q, x, y);
        for (size_t j = 0; j < len; j++)
            q[j] = p[j] - h * dir[j];
        ref->pattern = down;
        const double ld = ref_loss(ref, q, x, y);
        fd = (lu - ld) / (2 * h);
        if (memcmp(up, down, ref->pattern_len) == 0)
            break;
    }
    ref->pattern = NULL;
    free(q), free(up), free(down);
    return fd;
}

/* Every coordinate of grad (the model's layout), and a random direction,
 * against the reference's central differences. */
static void check_gradient(reference *ref, const float *grad, const float *x, const uint8_t *y,
                           const char *what)
{
    const tr_model *m = ref->m;
    double *p = malloc(sizeof(double) * m->len), *dir = calloc(m->len, sizeof(double));
    for (size_t j = 0; j < m->len; j++)
        p[j] = m->params[j];
    double worst = 0.0;
    size_t worst_j = 0, checked = 0;
    for (int li = 0; li < m->n_layers; li++)
        for (int t = 0; t < m->layer[li].n_tensors; t++)
            for (size_t k = 0; k < m->layer[li].count[t]; k++, checked++) {
                const size_t j = m->layer[li].offset[t] + k;
                dir[j] = 1.0;
                const double e = rel_err(grad[j], slope(ref, p, dir, x, y));
                dir[j] = 0.0;
                if (e > worst) {
                    worst = e;
                    worst_j = j;
                }
            }
    tr_rng r;
    tr_rng_seed(&r, 3, 4);
    double dot = 0.0;
    for (size_t j = 0; j < m->len; j++) {
        dir[j] = 2.0 * tr_rng_uniform(&r) - 1.0;
        dot += dir[j] * grad[j];
    }
    const double fd = slope(ref, p, dir, x, y);
    printf("%s: %zu coordinates, worst error %.2e at %zu; direction %.9g vs %.9g\n", what,
           checked, worst, worst_j, dot, fd);
    CHECK(checked == tr_model_param_count(m), "%s: %zu coordinates checked", what, checked);
    CHECK(worst < 1e-3, "%s: coordinate error %.3g at %zu", what, worst, worst_j);
    CHECK(rel_err(dot, fd) < 1e-4, "%s: directional derivative %.9g vs %.9g", what, dot, fd);
    free(p), free(dir);
}

/* A stack's gradient through tr_model_forward / tr_model_backward (a training
 * pass: dropout draws its mask) against the reference. */
static void check_stack(const char *what, tr_tensor_shape input, const char *spec)
{
    tr_layer layers[MODEL_MAX_LAYERS];
    int n_layers;
    tr_error perr;
    CHECK(tr_model_parse_layers(spec, layers, &n_layers, &perr) == 0, "%s: %s", spec, perr.msg);
    tr_model m;
    tr_error err;
    CHECK(tr_model_init(&m, input, layers, n_layers, &err) == 0, "%s: %s", what, err.msg);
    if (!m.params)
        return;
    tr_model_init_glorot(&m, 11);
    tr_rng r;
    tr_rng_seed(&r, 12, 13);
    for (int li = 0; li < m.n_layers; li++)
        if (m.layer[li].n_tensors == 2)
            fill(&r, m.params + m.layer[li].offset[DENSE_B], (long)m.layer[li].count[DENSE_B], 0);
    tr_model_work w;
    CHECK(tr_model_work_init(&w, &m, N, &err) == 0, "%s", err.msg);
    const long size = tr_tensor_size(input);
    float *x = malloc(sizeof(float) * (size_t)(N * size));
    for (long j = 0; j < N * size; j++)
        x[j] = w.x[j] = tr_rng_below(&r, 3) == 0 ? 0.0f : tr_rng_uniform(&r);
    uint8_t y[N];
    for (int s = 0; s < N; s++)
        y[s] = (uint8_t)tr_rng_below(&r, (uint64_t)tr_model_classes(&m));
    const tr_layer_input in = tr_model_input(&w, NULL, 1.0f);
    const tr_layer_pass pass = {.training = 1, .seed = 5, .epoch = 2, .step = 7};
    float *grad = tr_model_buffer_new(m.len);
    int correct = 0;
    tr_model_forward(&m, &w, &in, N, &pass);
    const double loss = tr_model_backward(&m, &w, &in, y, N, 1.0f / N, grad, &correct) / N;
    const uint8_t *masks[MODEL_MAX_LAYERS] = {0};
    for (int li = 0; li < m.n_layers; li++)
        if (is(&m.layer[li], "dropout"))
            masks[li] = w.work[li];
    reference ref = {.m = &m, .masks = masks};
    double *p = malloc(sizeof(double) * m.len);
    for (size_t j = 0; j < m.len; j++)
        p[j] = m.params[j];
    const double want = ref_loss(&ref, p, x, y);
    CHECK(fabs(loss - want) <= 1e-5 * fabs(want), "%s: loss %.9g, reference %.9g", what, loss,
          want);
    check_gradient(&ref, grad, x, y, what);
    free(p), free(x);
    tr_model_buffer_free(grad);
    tr_model_work_free(&w);
    tr_model_free(&m);
}

/* The step's gradient of a convnet with dropout: 3 shards give the
 * whole-batch gradient (the masks follow the samples' positions in the
 * batch), the same bits on 1 and 3 threads. */
static void check_step(const char *spec)
{
    tr_layer layers[MODEL_MAX_LAYERS];
    int n_layers;
    tr_model m;
    tr_error err;
    CHECK(tr_model_parse_layers(spec, layers, &n_layers, &err) == 0, "%s", err.msg);
    CHECK(tr_model_init(&m, (tr_tensor_shape){8, 8, 1}, layers, n_layers, &err) == 0, "%s",
          err.msg);
    tr_model_init_glorot(&m, 3);
    tr_dataset d;
    test_make_dataset(&d, 40, 8, 8, 6);
    uint32_t idx[12];
    for (int i = 0; i < 12; i++)
        idx[i] = (uint32_t)(3 * i + 1);
    float *g[3];
    double loss[3];
    const int threads[3] = {1, 3, 2}, shards[3] = {3, 3, 1};
    for (int run = 0; run < 3; run++) {
        g[run] = tr_model_buffer_new(m.len);
        tr_train_config cfg = {.threads = threads[run], .shards = shards[run], .batch_size = 16,
                            .opt = tr_adam_defaults(), .seed = 5};
        tr_train_session *s;
        CHECK(tr_train_session_new(&s, &m, &cfg, &err) == 0, "%s", err.msg);
        CHECK(tr_train_gradient(s, &d, idx, 12, g[run], &loss[run], &err) == 0, "%s", err.msg);
        test_check_threads_ran(tr_train_session_threads_ran(s), threads[run], shards[run]);
        tr_train_session_free(s);
    }
    CHECK(memcmp(g[0], g[1], sizeof(float) * m.len) == 0 && loss[0] == loss[1],
          "3 shards on 1 and 3 threads differ");
    const float e = max_rel_diff(g[0], g[2], (long)m.len);
    printf("%s step: 3 shards vs 1, loss %.9f vs %.9f, gradient %.2g\n", spec, loss[0],
           loss[2], e);
    CHECK(fabs(loss[0] - loss[2]) < 1e-6 && e < 1e-5, "3 shards vs 1: %g", e);
    float norm = 0.0f;
    for (size_t j = 0; j < m.len; j++)
        norm = fmaxf(norm, fabsf(g[0][j]));
    CHECK(norm > 1e-3f, "the gradient is all but zero: nothing was compared");
    for (int run = 0; run < 3; run++)
        tr_model_buffer_free(g[run]);
    tr_dataset_free(&d);
    tr_model_free(&m);
}

/* Which layers tr_model_define pairs for the ReLU derivative: a conv layer
 * that ends in a ReLU with a max pooling after it, and no other. */
static void check_relu_links(void)
{
    const char *spec = "conv2d(4,3,relu),maxpool2d(2),conv2d(4,3),maxpool2d(2),"
                       "conv2d(4,1,relu),avgpool2d(1),conv2d(4,1,same,relu),maxpool2d(1),"
                       "flatten,dense(10,softmax)";
    static const int by_next[] = {1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0};
    tr_layer layers[MODEL_MAX_LAYERS];
    int n;
    tr_model m;
    tr_error err;
    CHECK(tr_model_parse_layers(spec, layers, &n, &err) == 0, "%s", err.msg);
    CHECK(n == 11, "%d layers (the head is two)", n);
    CHECK(tr_model_define(&m, (tr_tensor_shape){14, 14, 1}, layers, n, &err) == 0, "%s",
          err.msg);
    for (int l = 0; l < n; l++) {
        CHECK(m.layer[l].relu_by_next == by_next[l], "layer %d: relu_by_next %d", l + 1,
              m.layer[l].relu_by_next);
        CHECK(m.layer[l].relu_of_prev == (l > 0 && by_next[l - 1]),
              "layer %d: relu_of_prev %d", l + 1, m.layer[l].relu_of_prev);
    }
}

/* A run of per-sample layers whose activations fill more than a step takes
 * through them at once: the step's gradient, a few samples at a time
 * through the run, has the bits of the plain passes over the whole block. */
static void check_runs(void)
{
    const char *spec = "conv2d(128,3,relu),maxpool2d(2),conv2d(8,3,same,relu),flatten,"
                       "dense(10,softmax)";
    enum { B = 12 };
    tr_layer layers[MODEL_MAX_LAYERS];
    int n_layers;
    tr_model m;
    tr_error err;
    CHECK(tr_model_parse_layers(spec, layers, &n_layers, &err) == 0, "%s", err.msg);
    CHECK(tr_model_init(&m, (tr_tensor_shape){16, 16, 1}, layers, n_layers, &err) == 0, "%s",
          err.msg);
    tr_model_init_glorot(&m, 3);
    tr_dataset d;
    test_make_dataset(&d, 40, 16, 16, 6);
    uint32_t idx[B];
    for (int i = 0; i < B; i++)
        idx[i] = (uint32_t)(3 * i + 2);
    float *g = tr_model_buffer_new(m.len), *ref = tr_model_buffer_new(m.len);
    double loss, lref;
    tr_train_config cfg = {.threads = 1, .shards = 1, .batch_size = B,
                           .opt = tr_adam_defaults(), .seed = 5};
    tr_train_session *s;
    CHECK(tr_train_session_new(&s, &m, &cfg, &err) == 0, "%s", err.msg);
    CHECK(tr_train_gradient(s, &d, idx, B, g, &loss, &err) == 0, "%s", err.msg);
    tr_train_session_free(s);
    tr_model_work w;
    CHECK(tr_model_work_init(&w, &m, B, &err) == 0, "%s", err.msg);
    tr_dataset_gather(w.x, w.y, &d, idx, 0, B);
    const tr_layer_input in = tr_model_input(&w, NULL, 1.0f);
    int correct = 0;
    tr_model_forward(&m, &w, &in, B, &(tr_layer_pass){.training = 1});
    lref = tr_model_backward(&m, &w, &in, w.y, B, 1.0f / B, ref, &correct) / B;
    printf("%s: step %.9f, plain passes %.9f\n", spec, loss, lref);
    CHECK(loss == lref && memcmp(g, ref, sizeof(float) * m.len) == 0,
          "the step's runs in chunks differ from the plain passes: loss %.9f vs %.9f, "
          "gradient %.2g", loss, lref, max_rel_diff(g, ref, (long)m.len));
    tr_model_work_free(&w);
    tr_model_buffer_free(g), tr_model_buffer_free(ref);
    tr_dataset_free(&d);
    tr_model_free(&m);
}

int main(void)
{
    check_relu_links();
    check_runs();
    check_conv_layer(6, 7, 1, 3, 0, 5, 1, 3);
    check_conv_layer(6, 7, 2, 3, 1, 4, 0, 2);
    check_conv_layer(9, 9, 3, 5, 1, 17, 1, 2);
    check_conv_layer(5, 5, 4, 5, 0, 33, 1, 5);
    check_conv_layer(28, 28, 1, 3, 0, 32, 1, 2);
    /* Patch rows of more than the layer's chunk: one sample at a time. */
    check_conv_layer(28, 28, 32, 3, 0, 20, 1, 3);
    check_conv_layer(16, 16, 64, 3, 1, 7, 0, 2);
    check_valid_kernels(28, 28, 1, 3, 32, 1, 4);
    check_valid_kernels(13, 13, 32, 3, 64, 1, 3);
    check_valid_kernels(9, 7, 3, 5, 17, 0, 2);
    check_valid_kernels(6, 6, 5, 1, 70, 1, 3);
    /* Pixel counts that leave 1, 2 and 5 for the forward pass's last block
     * (those above: 4, 3 and none). */
    check_valid_kernels(7, 7, 3, 3, 33, 1, 1);
    check_valid_kernels(4, 4, 3, 3, 16, 1, 2);
    check_valid_kernels(3, 13, 2, 3, 16, 0, 1);
    check_maxpool();

    check_stack("conv valid, pool, conv same, dropout 0.3", (tr_tensor_shape){7, 7, 2},
                "conv2d(3,3,relu),maxpool2d(2),conv2d(4,3,same,relu),flatten,dropout(0.3),"
                "dense(10,softmax)");
    check_stack("conv same (no ReLU), pool 3 of 8, dropout 0", (tr_tensor_shape){8, 8, 1},
                "conv2d(2,3,same),maxpool2d(3),dropout(0),flatten,dense(6,relu),"
                "dense(10,softmax)");
    /* Average pooling: windows that leave a row and a column out (7 of 9
     * by 2), and the global mean before a dense layer. */
    check_stack("conv, avgpool 2 of 7, conv same, global avgpool", (tr_tensor_shape){9, 9, 2},
                "conv2d(3,3,relu),avgpool2d(2),conv2d(4,3,same,relu),global_avgpool2d,"
                "dense(10,softmax)");
    check_stack("avgpool 3 of 8 on the input, flatten", (tr_tensor_shape){8, 8, 3},
                "avgpool2d(3),flatten,dense(6,relu),dense(10,softmax)");
    check_step("conv2d(4,3,relu),maxpool2d(2),flatten,dropout(0.5),dense(10,softmax)");
    check_step("conv2d(4,3,relu),avgpool2d(2),conv2d(5,3,same,relu),global_avgpool2d,"
               "dense(10,softmax)");
    return test_finish("test_conv");
}
