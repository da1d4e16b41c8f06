/* dense.h - the kernels of a dense layer on a block of n samples.
 *
 * Weights are stored input-major, w[i][o] for input i and output o, so that
 * the inner loops run over contiguous outputs.  Each fast kernel has a plain
 * *_ref twin that is the oracle the tests compare it with.
 *
 * The listed kernels skip groups of inputs that are all exactly 0: 81% of
 * MNIST's pixels are 0, 72% of its groups of 4.  Skipping (or adding) a
 * product with 0 changes no sum but for the sign of a zero sum, so this is
 * exact, not an approximation.  The small-layer kernels multiply every zero
 * instead (about half of the ReLU outputs): listing them costs more. */
#ifndef TRAINER_DENSE_H
#define TRAINER_DENSE_H

#include <stddef.h>
#include <stdint.h>

/* Inputs are listed in groups of DENSE_GROUP neighbours (inputs g*DENSE_GROUP
 * ...): the kernels hold a group's weight rows in registers and apply all of
 * them to a sample's sums at once, one load and one store of the sums per
 * group instead of per input.  Neighbouring pixels are lit together: MNIST's
 * 150 lit pixels a digit fall in 56 groups of 4. */
#define DENSE_GROUP 4

/* The nonzero inputs of a block of samples, listed by group: for group g,
 * entries start[g] .. start[g+1]-1 give the samples with a nonzero input in
 * the group (in sample order) and the group's DENSE_GROUP values for each,
 * zeros included (and zeros past in_dim in a last partial group).  The
 * kernels walk the weights group by group through this list, so that each
 * weight row is read once per block. */
typedef struct {
    int *start;    /* [groups + 1] */
    int *counts;   /* [max_n]: nonzero groups per sample */
    int *sample;   /* [max_n * groups] */
    float *value;  /* [max_n * groups][DENSE_GROUP] */
    int *scratch;  /* [max_n * groups]: per-sample lists while building */
    uint8_t *packed;  /* [max_n * groups][DENSE_GROUP]: their bytes, likewise */
    float *converted; /* [groups][DENSE_GROUP]: one sample's values, likewise */
} tr_dense_inputs;

/* Bytes that tr_dense_inputs_init needs for blocks of max_n samples of in_dim. */
size_t tr_dense_inputs_bytes(int max_n, int in_dim);

/* Points the arrays into mem (tr_dense_inputs_bytes long, 64-byte aligned). */
void tr_dense_inputs_init(tr_dense_inputs *l, void *mem, int max_n, int in_dim);

/* Lists the nonzero entries of in: [n][in_dim]. */
void tr_dense_inputs_index(tr_dense_inputs *l, const float *in, int n, int in_dim);

/* The same for inputs stored as bytes, read where they are: sample k's input i
 * is (float)rows[k][i] / divisor, rounded as that float division rounds.
 * Images need no conversion to floats this way. */
void tr_dense_inputs_index_bytes(tr_dense_inputs *l, const uint8_t *const *rows, int n,
                                 int in_dim, float divisor);

/* out = act(in . w + b); act is ReLU when relu is nonzero, identity otherwise.
 * in is given by its list (tr_dense_inputs_index of the input block).
 * out: [n][out_dim]   w: [in_dim][out_dim]   b: [out_dim] */
void tr_dense_forward(float *out, const tr_dense_inputs *in, const float *w, const float *b,
                      int n, int in_dim, int out_dim, int relu);
void tr_dense_forward_ref(float *out, const float *in, const float *w, const float *b,
                          int n, int in_dim, int out_dim, int relu);

/* The same sums split by inputs, for a layer whose weight rows are shared out
 * among threads: out[base[j] + s] += in_j[s] . w over the inputs [i0, i1)
 * only (i0 and i1 multiples of DENSE_GROUP, or in_dim), for each list j of
 * n_lists (each a block of samples, listed).  The sums add the inputs in
 * order, as tr_dense_forward does.
 * out: [n][out_dim] for the samples of every block   w: [in_dim][out_dim] */
void tr_dense_forward_rows(float *out, const tr_dense_inputs *const *lists, const int *base,
                           int n_lists, const float *w, int i0, int i1, int in_dim, int out_dim);

/* out = act(b + parts[0] + parts[1] + ...), summed in that order: the layer's
 * output from its partial sums over parts of its inputs.
 * out, parts[p]: [n][out_dim]   b: [out_dim] */
void tr_dense_sum_parts(float *out, const float *const *parts, int n_parts, const float *b,
                        int n, int out_dim, int relu);

/* Gradients of a dense layer from the gradient at its (pre-activation) output.
 * They overwrite: d_w = in^T . d_out, d_b = column sums of d_out, and, unless
 * d_in is NULL, d_in = d_out . w^T, which uses wt ([out_dim][in_dim]) as
 * scratch.  With row_used ([in_dim]) not NULL, row_used[i] says whether input
 * i is nonzero in some sample: where it is not, the gradient row is 0 but d_w
 * may hold anything there (rows of groups no sample lit are not written).
 * With d_w NULL the weight gradient is left out.
 * d_in: [n][in_dim]   d_w: [in_dim][out_dim]   d_b: [out_dim]
 * d_out: [n][out_dim]   in: the input block's list   w: [in_dim][out_dim] */
void tr_dense_backward(float *d_in, float *d_w, float *d_b, const float *d_out,
                       const tr_dense_inputs *in, const float *w, float *wt, int n,
                       int in_dim, int out_dim, uint8_t *row_used);

/* d_w's rows [i0, i1) alone (i0 and i1 as for tr_dense_forward_rows), and
 * row_used over them: the same values as tr_dense_backward's there. */
void tr_dense_weight_gradient_rows(float *d_w, const tr_dense_inputs *in, const float *d_out,
                                   int i0,
                                   int i1, int in_dim, int out_dim, uint8_t *row_used);
void tr_dense_backward_ref(float *d_in, float *d_w, float *d_b, const float *d_out,
                           const float *in, const float *w, int n, int in_dim,
                           int out_dim);

/* The same layer without input lists, for layers whose weights fit in the
 * first-level caches: the output sums of 4 samples stay in registers while the
 * weight rows stream past, and zero inputs are multiplied like the others.
 * The sums run in the same order as in the listed kernels, so the results are
 * the same bits, up to the sign of zeros.  wt: [out_dim][in_dim] scratch. */
void tr_dense_forward_small(float *out, const float *in, const float *w, const float *b,
                            int n, int in_dim, int out_dim, int relu);
void tr_dense_backward_small(float *d_in, float *d_w, float *d_b, const float *d_out,
                             const float *in, const float *w, float *wt, int n, int in_dim,
                             int out_dim);

/* The two halves of tr_dense_backward_small, for a caller that feeds the rows
 * in blocks: the weight and bias gradients of n rows, added to d_w and d_b
 * when accumulate is nonzero (each sum carries on in row order, so that
 * blocks give the bits of a single call); and the input gradient from wt,
 * the weights transposed by tr_dense_transpose. */
void tr_dense_weight_gradient_small(float *d_w, float *d_b, const float *d_out, const float *in,
                                    int n, int in_dim, int out_dim, int accumulate);
void tr_dense_input_gradient_small(float *d_in, const float *d_out, const float *wt, int n,
                                   int in_dim, int out_dim);

/* d_b = (or, when accumulate is nonzero, += ) the column sums of d_out,
 * row after row.  d_b: [out_dim]   d_out: [n][out_dim] */
void tr_dense_bias_gradient(float *d_b, const float *d_out, int n, int out_dim, int accumulate);

/* x[k] = 0 where x[k] < 0: the ReLU in place.  x: [count] */
void tr_dense_relu(float *x, long count);

/* dst[c][r] = src[r][c].  dst: [cols][rows]   src: [rows][cols] */
void tr_dense_transpose(float *dst, const float *src, int rows, int cols);

/* d[k] = 0 where out[k] <= 0: the ReLU's derivative applied in place.
 * d, out: [count] */
void tr_dense_relu_backward(float *d, const float *out, long count);

#endif
