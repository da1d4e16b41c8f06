/* The fast kernels against their plain twins, and the fused softmax with
 * cross-entropy against a computation in double. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/dense.h"
#include "rng.h"
#include "model/softmax.h"
#include "testutil.h"

/* Float rounding of sums of up to a few hundred products of numbers near 1:
 * the kernels may sum in another order than the oracle. */
#define KERNEL_TOL 1e-5f

static float *random_buffer(tr_rng *r, long n, int zero_share)
{
    float *p = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (long i = 0; i < n; i++)
        p[i] = tr_rng_below(r, 100) < (uint64_t)zero_share ? 0.0f : 2.0f * tr_rng_uniform(r) - 1.0f;
    return p;
}

static float max_rel_diff(const float *a, const float *b, long n)
{
    float worst = 0.0f;
    for (long i = 0; i < n; i++) {
        float d = fabsf(a[i] - b[i]) / fmaxf(1.0f, fabsf(b[i]));
        if (d > worst || isnan(d))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* a[i] == b[i] for every i: the same values, bit for bit except zero signs. */
static int same_values(const float *a, const float *b, long n)
{
    for (long i = 0; i < n; i++)
        if (!(a[i] == b[i]))
            return 0;
    return 1;
}

static void compare(int n, int in_dim, int out_dim, int relu, tr_rng *r)
{
    float *in = random_buffer(r, (long)n * in_dim, 60); /* sparse, like MNIST */
    for (long i = 0; i < (long)n * in_dim; i += 7) /* some zeros negative, as ReLU leaves */
        if (in[i] == 0.0f)
            in[i] = -0.0f;
    float *w = random_buffer(r, (long)in_dim * out_dim, 0);
    float *b = random_buffer(r, out_dim, 0);
    float *d_out = random_buffer(r, (long)n * out_dim, 10);
    long no = (long)n * out_dim, ni = (long)n * in_dim, nw = (long)in_dim * out_dim;
    float *o1 = malloc(sizeof(float) * (size_t)no), *o2 = malloc(sizeof(float) * (size_t)no);
    float *dw1 = malloc(sizeof(float) * (size_t)nw), *dw2 = malloc(sizeof(float) * (size_t)nw);
    float *db1 = malloc(sizeof(float) * (size_t)out_dim), *db2 = malloc(sizeof(float) * (size_t)out_dim);
    float *di1 = malloc(sizeof(float) * (size_t)ni), *di2 = malloc(sizeof(float) * (size_t)ni);
    /* Garbage in the outputs: the kernels must overwrite, not accumulate. */
    memset(dw1, 0x7f, sizeof(float) * (size_t)nw);
    memset(db1, 0x7f, sizeof(float) * (size_t)out_dim);
    memset(di1, 0x7f, sizeof(float) * (size_t)ni);

    void *mem = aligned_alloc(64, tr_dense_inputs_bytes(n, in_dim));
    tr_dense_inputs list;
    tr_dense_inputs_init(&list, mem, n, in_dim);
    tr_dense_inputs_index(&list, in, n, in_dim);
    float *wt = malloc(sizeof(float) * (size_t)nw);
    tr_dense_forward(o1, &list, w, b, n, in_dim, out_dim, relu);
    tr_dense_forward_ref(o2, in, w, b, n, in_dim, out_dim, relu);
    float e = max_rel_diff(o1, o2, no);
    CHECK(e <= KERNEL_TOL, "forward %dx%dx%d relu=%d: %g", n, in_dim, out_dim, relu, e);

    tr_dense_backward(di1, dw1, db1, d_out, &list, w, wt, n, in_dim, out_dim, NULL);
    tr_dense_backward_ref(di2, dw2, db2, d_out, in, w, n, in_dim, out_dim);
    e = max_rel_diff(dw1, dw2, nw);
    CHECK(e <= KERNEL_TOL, "d_w %dx%dx%d: %g", n, in_dim, out_dim, e);
    e = max_rel_diff(db1, db2, out_dim);
    CHECK(e <= KERNEL_TOL, "d_b %dx%dx%d: %g", n, in_dim, out_dim, e);
    e = max_rel_diff(di1, di2, ni);
    CHECK(e <= KERNEL_TOL, "d_in %dx%dx%d: %g", n, in_dim, out_dim, e);

    /* With row_used: used rows match; an unused row holds zeros when its
     * group of DENSE_GROUP inputs was listed, and keeps what was there when
     * no sample lit any input of its group. */
    uint8_t *used = malloc((size_t)in_dim);
    memset(dw1, 0x7f, sizeof(float) * (size_t)nw);
    tr_dense_backward(NULL, dw1, db1, d_out, &list, w, wt, n, in_dim, out_dim, used);
    for (int i = 0; i < in_dim; i++) {
        int any = 0, group_lit = 0;
        const int g0 = i / DENSE_GROUP * DENSE_GROUP;
        for (int k = 0; k < n; k++) {
            any |= in[(long)k * in_dim + i] != 0.0f;
            for (int j = g0; j < g0 + DENSE_GROUP && j < in_dim; j++)
                group_lit |= in[(long)k * in_dim + j] != 0.0f;
        }
        CHECK(used[i] == any, "row_used[%d] = %d, want %d", i, used[i], any);
        const float *row = dw1 + (long)i * out_dim, *want = dw2 + (long)i * out_dim;
        if (any) {
            CHECK(max_rel_diff(row, want, out_dim) <= KERNEL_TOL, "used row %d differs", i);
        } else if (group_lit) {
            int zeros = 1;
            for (int o = 0; o < out_dim; o++)
                zeros &= row[o] == 0.0f;
            CHECK(zeros, "unused row %d of a listed group is not 0", i);
        } else {
            CHECK(((const uint8_t *)row)[0] == 0x7f, "row %d of an unlisted group was written", i);
        }
    }
    free(used);

    /* The small-layer kernels: against the oracle, and the same bits as the
     * listed kernels (their sums run in the same order; zeros may differ in
     * sign only, which == ignores). */
    float *o3 = malloc(sizeof(float) * (size_t)no), *dw3 = malloc(sizeof(float) * (size_t)nw);
    float *db3 = malloc(sizeof(float) * (size_t)out_dim), *di3 = malloc(sizeof(float) * (size_t)ni);
    memset(dw3, 0x7f, sizeof(float) * (size_t)nw);
    memset(db3, 0x7f, sizeof(float) * (size_t)out_dim);
    memset(di3, 0x7f, sizeof(float) * (size_t)ni);
    tr_dense_forward_small(o3, in, w, b, n, in_dim, out_dim, relu);
    e = max_rel_diff(o3, o2, no);
    CHECK(e <= KERNEL_TOL, "small forward %dx%dx%d relu=%d: %g", n, in_dim, out_dim, relu, e);
    tr_dense_backward(di1, dw1, db1, d_out, &list, w, wt, n, in_dim, out_dim, NULL);
    tr_dense_backward_small(di3, dw3, db3, d_out, in, w, wt, n, in_dim, out_dim);
    e = max_rel_diff(dw3, dw2, nw);
    CHECK(e <= KERNEL_TOL, "small d_w %dx%dx%d: %g", n, in_dim, out_dim, e);
    e = max_rel_diff(di3, di2, ni);
    CHECK(e <= KERNEL_TOL, "small d_in %dx%dx%d: %g", n, in_dim, out_dim, e);
    CHECK(same_values(o3, o1, no) && same_values(dw3, dw1, nw) && same_values(db3, db1, out_dim) &&
              same_values(di3, di1, ni),
          "small and listed kernels differ on %dx%dx%d", n, in_dim, out_dim);
    free(o3); free(dw3); free(db3); free(di3);
    free(mem);
    free(wt);

    free(in); free(w); free(b); free(d_out); free(o1); free(o2);
    free(dw1); free(dw2); free(db1); free(db2); free(di1); free(di2);
}

/* Listing image bytes gives the same lists as listing their float values. */
static void test_index_bytes(tr_rng *r)
{
    enum { N = 9, DIM = 201 }; /* three 64-byte blocks and a tail, a partial group */
    uint8_t img[N][DIM];
    const uint8_t *rows[N];
    float x[N * DIM], value_of[256];
    for (int b = 0; b < 256; b++)
        value_of[b] = (float)b / 255.0f;
    for (int k = 0; k < N; k++) {
        for (int i = 0; i < DIM; i++) {
            img[k][i] = tr_rng_below(r, 100) < 30 ? (uint8_t)(1 + tr_rng_below(r, 255)) : 0;
            x[k * DIM + i] = value_of[img[k][i]];
        }
        rows[k] = img[k];
    }
    memset(img[3], 0, DIM);    /* an empty sample */
    memset(x + 3 * DIM, 0, sizeof(float) * DIM);
    for (int i = 0; i < DIM; i++) { /* every byte value, in two samples */
        img[5][i] = (uint8_t)i;
        img[6][i] = (uint8_t)(255 - i);
        x[5 * DIM + i] = value_of[img[5][i]];
        x[6 * DIM + i] = value_of[img[6][i]];
    }
    void *m1 = aligned_alloc(64, tr_dense_inputs_bytes(N, DIM));
    void *m2 = aligned_alloc(64, tr_dense_inputs_bytes(N, DIM));
    tr_dense_inputs a, b;
    tr_dense_inputs_init(&a, m1, N, DIM);
    tr_dense_inputs_init(&b, m2, N, DIM);
    tr_dense_inputs_index(&a, x, N, DIM);
    tr_dense_inputs_index_bytes(&b, rows, N, DIM, 255.0f);
    const int groups = (DIM + DENSE_GROUP - 1) / DENSE_GROUP, entries = a.start[groups];
    CHECK(entries > 0 && memcmp(a.start, b.start, sizeof(int) * (groups + 1)) == 0 &&
              memcmp(a.sample, b.sample, sizeof(int) * (size_t)entries) == 0 &&
              memcmp(a.value, b.value, sizeof(float) * (size_t)entries * DENSE_GROUP) == 0,
          "byte and float lists differ (%d entries)", entries);
    free(m1);
    free(m2);
}

/* The first layer split by inputs (tr_dense_forward_rows over parts, then
 * tr_dense_sum_parts), as training computes it: against the oracle, and the same
 * bits however the samples are split into lists. */
static void test_forward_parts(tr_rng *r)
{
    enum { N = 11, IN = 203, OUT = 70, CUT = 100 }; /* CUT: a multiple of DENSE_GROUP */
    float *in = random_buffer(r, (long)N * IN, 70);
    float *w = random_buffer(r, (long)IN * OUT, 0);
    float *b = random_buffer(r, OUT, 0);
    float ref[N * OUT], whole[2][N * OUT], split[2][N * OUT], o1[N * OUT], o2[N * OUT];
    void *m0 = aligned_alloc(64, tr_dense_inputs_bytes(N, IN));
    void *m1 = aligned_alloc(64, tr_dense_inputs_bytes(N, IN));
    void *m2 = aligned_alloc(64, tr_dense_inputs_bytes(N, IN));
    tr_dense_inputs all, head, tail;
    tr_dense_inputs_init(&all, m0, N, IN);
    tr_dense_inputs_init(&head, m1, N, IN);
    tr_dense_inputs_init(&tail, m2, N, IN);
    tr_dense_inputs_index(&all, in, N, IN);
    tr_dense_inputs_index(&head, in, 4, IN);          /* samples 0..3 */
    tr_dense_inputs_index(&tail, in + 4 * IN, N - 4, IN); /* samples 4..10 */
    const tr_dense_inputs *one[1] = {&all}, *two[2] = {&head, &tail};
    const int base1[1] = {0}, base2[2] = {0, 4};
    const int cut[3] = {0, CUT, IN};
    for (int p = 0; p < 2; p++) {
        memset(whole[p], 0, sizeof whole[p]);
        memset(split[p], 0, sizeof split[p]);
        tr_dense_forward_rows(whole[p], one, base1, 1, w, cut[p], cut[p + 1], IN, OUT);
        tr_dense_forward_rows(split[p], two, base2, 2, w, cut[p], cut[p + 1], IN, OUT);
    }
    CHECK(memcmp(whole, split, sizeof whole) == 0, "the sums depend on how samples are listed");
    const float *parts1[2] = {whole[0], whole[1]}, *parts2[2] = {split[0], split[1]};
    tr_dense_sum_parts(o1, parts1, 2, b, N, OUT, 1);
    tr_dense_sum_parts(o2, parts2, 2, b, N, OUT, 1);
    tr_dense_forward_ref(ref, in, w, b, N, IN, OUT, 1);
    float e = max_rel_diff(o1, ref, N * OUT);
    CHECK(e <= KERNEL_TOL, "forward by parts: %g", e);
    CHECK(memcmp(o1, o2, sizeof o1) == 0, "summed parts differ");
    /* One part over every input, from 0, then plus b: the same value as the
     * plain sum within rounding, and a part over no input adds nothing. */
    float none[N * OUT];
    memset(none, 0, sizeof none);
    tr_dense_forward_rows(none, one, base1, 1, w, IN, IN, IN, OUT);
    int zeros = 1;
    for (int k = 0; k < N * OUT; k++)
        zeros &= none[k] == 0.0f;
    CHECK(zeros, "an empty range of inputs changed the sums");
    free(in); free(w); free(b); free(m0); free(m1); free(m2);
}

/* The first layer's weight gradient in parts of its rows, as training fills
 * it in: the same bits as the whole, and nothing written outside the part. */
static void test_weight_gradient_rows(tr_rng *r)
{
    enum { N = 9, IN = 203, OUT = 37, CUT = 100 }; /* CUT: a multiple of DENSE_GROUP */
    float *in = random_buffer(r, (long)N * IN, 70);
    float *d_out = random_buffer(r, (long)N * OUT, 10);
    static float whole[IN * OUT], parts[IN * OUT], d_b[OUT];
    uint8_t used_whole[IN], used_parts[IN];
    void *mem = aligned_alloc(64, tr_dense_inputs_bytes(N, IN));
    tr_dense_inputs list;
    tr_dense_inputs_init(&list, mem, N, IN);
    tr_dense_inputs_index(&list, in, N, IN);
    memset(whole, 0, sizeof whole);
    memset(parts, 0x7f, sizeof parts);
    memset(used_parts, 2, sizeof used_parts);
    tr_dense_backward(NULL, whole, d_b, d_out, &list, NULL, NULL, N, IN, OUT, used_whole);
    tr_dense_weight_gradient_rows(parts, &list, d_out, CUT, IN, IN, OUT, used_parts);
    int outside = 0;
    for (long i = 0; i < (long)CUT * OUT; i++)
        outside += ((const uint8_t *)&parts[i])[0] != 0x7f;
    for (int i = 0; i < CUT; i++)
        outside += used_parts[i] != 2;
    CHECK(outside == 0, "rows before the part were written (%d)", outside);
    tr_dense_weight_gradient_rows(parts, &list, d_out, 0, CUT, IN, OUT, used_parts);
    CHECK(memcmp(used_parts, used_whole, sizeof used_whole) == 0, "row_used differs");
    int differ = 0;
    for (int i = 0; i < IN; i++)
        if (used_whole[i])
            differ += memcmp(parts + (long)i * OUT, whole + (long)i * OUT,
                             sizeof(float) * OUT) != 0;
    CHECK(differ == 0, "%d used rows differ from the whole gradient's", differ);
    free(in); free(d_out); free(mem);
}

static void test_transpose(tr_rng *r)
{
    const int shapes[][2] = {{1, 1}, {16, 16}, {128, 32}, {32, 10}, {37, 50}, {17, 33}};
    for (size_t k = 0; k < sizeof shapes / sizeof *shapes; k++) {
        const int rows = shapes[k][0], cols = shapes[k][1];
        float *src = random_buffer(r, (long)rows * cols, 0);
        float *dst = malloc(sizeof(float) * (size_t)rows * cols);
        tr_dense_transpose(dst, src, rows, cols);
        int bad = 0;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++)
                bad += dst[(long)j * rows + i] != src[(long)i * cols + j];
        CHECK(bad == 0, "transpose %dx%d: %d misplaced", rows, cols, bad);
        free(src);
        free(dst);
    }
}

static void test_relu_backward(void)
{
    float d[5] = {1, 2, 3, 4, 5}, out[5] = {0.5f, 0.0f, -1.0f, 2.0f, -0.0f};
    tr_dense_relu_backward(d, out, 5);
    CHECK(d[0] == 1 && d[1] == 0 && d[2] == 0 && d[3] == 4 && d[4] == 0,
          "relu_backward %g %g %g %g %g", d[0], d[1], d[2], d[3], d[4]);
}

static void test_softmax_xent(tr_rng *r)
{
    enum { N = 7, C = 10 };
    float z[N * C], d[N * C];
    uint8_t y[N];
    for (int i = 0; i < N * C; i++)
        z[i] = 8.0f * (2.0f * tr_rng_uniform(r) - 1.0f);
    z[3 * C + 2] = 500.0f; /* exp overflows unless the max is subtracted */
    for (int s = 0; s < N; s++)
        y[s] = (uint8_t)tr_rng_below(r, C);
    int correct = 0;
    const float scale = 0.25f;
    double loss = tr_softmax_xent(d, z, y, N, C, scale, 0.0f, &correct);
    double want_loss = 0.0;
    int want_correct = 0;
    for (int s = 0; s < N; s++) {
        const float *row = z + s * C;
        double m = -INFINITY;
        int arg = 0;
        for (int c = 0; c < C; c++)
            if (row[c] > m) {
                m = row[c];
                arg = c;
            }
        double sum = 0.0;
        for (int c = 0; c < C; c++)
            sum += exp(row[c] - m);
        want_loss += log(sum) + m - row[y[s]];
        want_correct += arg == y[s];
        for (int c = 0; c < C; c++) {
            double p = exp(row[c] - m) / sum;
            double g = scale * (p - (c == y[s]));
            CHECK(fabs(d[s * C + c] - g) <= 1e-6, "d[%d][%d] = %g, want %g", s, c,
                  d[s * C + c], g);
        }
    }
    CHECK(isfinite(loss) && fabs(loss - want_loss) <= 1e-9 * fabs(want_loss),
          "loss %.12g, want %.12g", loss, want_loss);
    CHECK(correct == want_correct, "correct %d, want %d", correct, want_correct);

    uint8_t pred[N];
    int correct2 = 0;
    double loss2 = tr_softmax_xent_eval(pred, z, y, N, C, 0.0f, &correct2);
    CHECK(loss2 == loss && correct2 == correct, "eval loss %g, correct %d", loss2, correct2);
    CHECK(pred[3] == 2, "arg max of the row with 500: %d", pred[3]);

    /* Label smoothing 0.1: the targets y = 0.9 onehot + 0.01, the loss
     * -sum_c y_c log p_c and the gradient scale (p - y), from log p
     * computed directly; train and eval agree. */
    const float ls = 0.1f;
    correct = 0;
    loss = tr_softmax_xent(d, z, y, N, C, scale, ls, &correct);
    want_loss = 0.0;
    for (int s = 0; s < N; s++) {
        const float *row = z + s * C;
        double m = row[0], sum = 0.0;
        for (int c = 1; c < C; c++)
            m = row[c] > m ? row[c] : m;
        for (int c = 0; c < C; c++)
            sum += exp(row[c] - m);
        for (int c = 0; c < C; c++) {
            const double target = (1.0 - ls) * (c == y[s]) + (double)ls / C;
            const double logp = row[c] - m - log(sum);
            want_loss -= target * logp;
            const double g = scale * (exp(logp) - target);
            CHECK(fabs(d[s * C + c] - g) <= 1e-6, "smoothed d[%d][%d] = %g, want %g", s, c,
                  d[s * C + c], g);
        }
    }
    CHECK(fabs(loss - want_loss) <= 1e-9 * fabs(want_loss), "smoothed loss %.12g, want %.12g",
          loss, want_loss);
    correct2 = 0;
    loss2 = tr_softmax_xent_eval(pred, z, y, N, C, ls, &correct2);
    CHECK(loss2 == loss && correct2 == correct, "smoothed eval loss %g, want %g", loss2, loss);

    float tie[4] = {1, 3, 3, 0};
    uint8_t lab = 2, p;
    int c = 0;
    tr_softmax_xent_eval(&p, tie, &lab, 1, 4, 0.0f, &c);
    CHECK(p == 1 && c == 0, "ties go to the lowest class: %d", p);
}

int main(void)
{
    tr_rng r;
    tr_rng_seed(&r, 12345, 0);
    const int shapes[][3] = {
        {1, 1, 1}, {16, 784, 128}, {3, 128, 32}, {5, 32, 10}, {7, 33, 17},
        {4, 10, 129}, {2, 100, 3}, {32, 64, 64}, {16, 128, 32}, {16, 32, 10},
        {17, 200, 20}, {9, 129, 48},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++)
        for (int relu = 0; relu <= 1; relu++)
            compare(shapes[i][0], shapes[i][1], shapes[i][2], relu, &r);
    test_transpose(&r);
    test_index_bytes(&r);
    test_weight_gradient_rows(&r);
    test_forward_parts(&r);
    test_relu_backward();
    test_softmax_xent(&r);
    return test_finish("test_dense");
}
