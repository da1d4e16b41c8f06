#include "dense.h"

#include <string.h>

#include "simd.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

void tr_dense_forward_ref(float *out, const float *in, const float *w, const float *b,
                          int n, int in_dim, int out_dim, int relu)
{
    for (int s = 0; s < n; s++) {
        for (int o = 0; o < out_dim; o++) {
            float acc = b[o];
            for (int i = 0; i < in_dim; i++)
                acc += in[(long)s * in_dim + i] * w[(long)i * out_dim + o];
            out[(long)s * out_dim + o] = relu && acc < 0.0f ? 0.0f : acc;
        }
    }
}

void tr_dense_backward_ref(float *d_in, float *d_w, float *d_b, const float *d_out,
                           const float *in, const float *w, int n, int in_dim,
                           int out_dim)
{
    for (int o = 0; o < out_dim; o++) {
        float acc = 0.0f;
        for (int s = 0; s < n; s++)
            acc += d_out[(long)s * out_dim + o];
        d_b[o] = acc;
    }
    for (int i = 0; i < in_dim; i++) {
        for (int o = 0; o < out_dim; o++) {
            float acc = 0.0f;
            for (int s = 0; s < n; s++)
                acc += in[(long)s * in_dim + i] * d_out[(long)s * out_dim + o];
            d_w[(long)i * out_dim + o] = acc;
        }
    }
    if (!d_in)
        return;
    for (int s = 0; s < n; s++) {
        for (int i = 0; i < in_dim; i++) {
            float acc = 0.0f;
            for (int o = 0; o < out_dim; o++)
                acc += d_out[(long)s * out_dim + o] * w[(long)i * out_dim + o];
            d_in[(long)s * in_dim + i] = acc;
        }
    }
}

/* The listed kernels hold DENSE_GROUP weight rows of MAX_VECTORS vectors of
 * outputs in registers (16 of AVX-512's 32, 8 of AVX2's 16), and a sample's
 * sums or a gradient row's sums over those vectors. */
enum { MAX_VECTORS = VF_REGS >= 32 ? 4 : 2 };

/* The small-layer kernels keep SMALL_SAMPLES x SMALL_VECTORS output sums (16
 * of AVX-512's 32 registers, 8 of AVX2's 16), and SMALL_ROWS x
 * SMALL_GRAD_VECTORS weight gradient sums, so that enough independent FMA
 * chains hide their latency; INPUT_ROWS x INPUT_VECTORS input gradient sums
 * (24 of AVX-512's registers, 12 of AVX2's), as many as the conv kernels
 * keep, with a register for each vector of wt and one for a gradient. */
enum {
    SMALL_SAMPLES = 4, SMALL_VECTORS = VF_REGS >= 32 ? 4 : 2, SMALL_ROWS = 4,
    SMALL_GRAD_VECTORS = 2, GRAD_CHUNK = 256, INPUT_ROWS = 6,
    INPUT_VECTORS = VF_REGS >= 32 ? 4 : 2
};

static int group_count(int in_dim)
{
    return (in_dim + DENSE_GROUP - 1) / DENSE_GROUP;
}

/* Writes the numbers g of the groups of x[0 .. len) that hold a nonzero value
 * into idx; returns how many. */
static int nonzero_groups(int *restrict idx, const float *restrict x, int len)
{
    int k = 0;
    for (int g = 0; g * DENSE_GROUP < len; g++) {
        int lit = 0;
        for (int j = g * DENSE_GROUP; j < len && j < (g + 1) * DENSE_GROUP; j++)
            lit |= x[j] != 0.0f;
        idx[k] = g;
        k += lit;
    }
    return k;
}

/* The same for bytes, which also writes each listed group's DENSE_GROUP bytes
 * (zeros past len) into packed, in the order of idx. */
static int nonzero_byte_groups(int *restrict idx, uint8_t *restrict packed,
                               const uint8_t *restrict x, int len)
{
    int k = 0, g = 0;
#if defined(__AVX512F__) && DENSE_GROUP == 4
    const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    for (; (g + 16) * 4 <= len; g += 16) {
        const __m512i v = _mm512_loadu_si512(x + g * 4);
        const __mmask16 m = _mm512_test_epi32_mask(v, v);
        _mm512_mask_compressstoreu_epi32(idx + k, m, _mm512_add_epi32(iota, _mm512_set1_epi32(g)));
        _mm512_mask_compressstoreu_epi32(packed + 4 * k, m, v);
        k += __builtin_popcount(m);
    }
#endif
    /* Branch-free: MNIST's zeros are too irregular to predict. */
    for (; g * DENSE_GROUP < len; g++) {
        int lit = 0;
        for (int q = 0; q < DENSE_GROUP; q++) {
            const int j = g * DENSE_GROUP + q;
            packed[k * DENSE_GROUP + q] = j < len ? x[j] : 0;
            lit |= packed[k * DENSE_GROUP + q];
        }
        idx[k] = g;
        k += lit != 0;
    }
    return k;
}

/* out[j] = (float)in[j] / divisor for j < count.  GCC vectorizes the loop,
 * and a vector division rounds as the scalar one does. */
static void bytes_to_floats(float *restrict out, const uint8_t *restrict in, int count,
                            float divisor)
{
    for (int j = 0; j < count; j++)
        out[j] = (float)in[j] / divisor;
}

static size_t align64(size_t bytes)
{
    return (bytes + 63) / 64 * 64;
}

size_t tr_dense_inputs_bytes(int max_n, int in_dim)
{
    const size_t groups = (size_t)group_count(in_dim), entries = (size_t)max_n * groups;
    return align64(sizeof(int) * (groups + 1)) + align64(sizeof(int) * (size_t)max_n) +
           2 * align64(sizeof(int) * entries) + align64(sizeof(float) * entries * DENSE_GROUP) +
           align64(DENSE_GROUP * entries) + align64(sizeof(float) * groups * DENSE_GROUP);
}

void tr_dense_inputs_init(tr_dense_inputs *l, void *mem, int max_n, int in_dim)
{
    char *p = mem;
    const size_t groups = (size_t)group_count(in_dim), entries = (size_t)max_n * groups;
    l->start = (int *)p;
    p += align64(sizeof(int) * (groups + 1));
    l->counts = (int *)p;
    p += align64(sizeof(int) * (size_t)max_n);
    l->sample = (int *)p;
    p += align64(sizeof(int) * entries);
    l->scratch = (int *)p;
    p += align64(sizeof(int) * entries);
    l->value = (float *)p;
    p += align64(sizeof(float) * entries * DENSE_GROUP);
    l->packed = (uint8_t *)p;
    p += align64(DENSE_GROUP * entries);
    l->converted = (float *)p;
}

/* Counts the entries of each group into start[] (group g's first entry at
 * start[g]) from the per-sample lists: l->counts[k] nonzero groups for sample
 * k in l->scratch, after those of the samples before it.  The fills then place
 * each sample's entries in sample order. */
static void count_groups(tr_dense_inputs *restrict l, int n, int groups)
{
    int *restrict start = l->start;
    memset(start, 0, sizeof(int) * ((size_t)groups + 1));
    const int *restrict idx = l->scratch;
    for (int k = 0; k < n; k++) {
        for (int j = 0; j < l->counts[k]; j++)
            start[idx[j] + 1]++;
        idx += l->counts[k];
    }
    for (int g = 0; g < groups; g++)
        start[g + 1] += start[g];
}

/* The fill advances start[g] to start[g + 1]; this undoes it. */
static void restore_starts(int *start, int groups)
{
    for (int g = groups; g > 0; g--)
        start[g] = start[g - 1];
    start[0] = 0;
}

void tr_dense_inputs_index(tr_dense_inputs *restrict l, const float *restrict in, int n,
                           int in_dim)
{
    const int groups = group_count(in_dim);
    int total = 0;
    for (int k = 0; k < n; k++) {
        l->counts[k] = nonzero_groups(l->scratch + total, in + (long)k * in_dim, in_dim);
        total += l->counts[k];
    }
    count_groups(l, n, groups);
    /* Filled in sample order, so that each group's samples are in order. */
    const int *restrict idx = l->scratch;
    for (int k = 0; k < n; k++) {
        const float *restrict x = in + (long)k * in_dim;
        for (int j = 0; j < l->counts[k]; j++) {
            const int g = idx[j], at = l->start[g]++;
            float *restrict v = l->value + (long)at * DENSE_GROUP;
            l->sample[at] = k;
            for (int q = 0; q < DENSE_GROUP; q++)
                v[q] = g * DENSE_GROUP + q < in_dim ? x[g * DENSE_GROUP + q] : 0.0f;
        }
        idx += l->counts[k];
    }
    restore_starts(l->start, groups);
}

void tr_dense_inputs_index_bytes(tr_dense_inputs *restrict l, const uint8_t *const *rows, int n,
                                 int in_dim, float divisor)
{
    const int groups = group_count(in_dim);
    int total = 0;
    for (int k = 0; k < n; k++) {
        l->counts[k] = nonzero_byte_groups(l->scratch + total,
                                           l->packed + (long)total * DENSE_GROUP, rows[k],
                                           in_dim);
        total += l->counts[k];
    }
    count_groups(l, n, groups);
    /* A sample's values are converted together (a vector division is as exact
     * as a scalar one), then copied to their groups' entries. */
    const int *restrict idx = l->scratch;
    const uint8_t *restrict bytes = l->packed;
    for (int k = 0; k < n; k++) {
        const int c = l->counts[k];
        bytes_to_floats(l->converted, bytes, c * DENSE_GROUP, divisor);
        for (int j = 0; j < c; j++) {
            const int at = l->start[idx[j]]++;
            l->sample[at] = k;
            memcpy(l->value + (long)at * DENSE_GROUP, l->converted + j * DENSE_GROUP,
                   sizeof(float) * DENSE_GROUP);
        }
        idx += c;
        bytes += c * DENSE_GROUP;
    }
    restore_starts(l->start, groups);
}

void tr_dense_relu(float *restrict x, long count)
{
    for (long k = 0; k < count; k++)
        x[k] = x[k] < 0.0f ? 0.0f : x[k];
}

/* For every sample listed in group g: out[s][0 .. nv*VF_LEN) += the products
 * of its `rows` values (rows <= DENSE_GROUP) with w's rows of the group,
 * added in row order, the rows held in registers; the last vector is `lanes`
 * wide.  Inlined with constant nv and, but for a last partial group, rows. */
static inline __attribute__((always_inline)) void
forward_group(float *restrict out, int nv, int lanes, int rows, const tr_dense_inputs *restrict in,
              int g, const float *restrict w, int out_dim)
{
    vf wr[DENSE_GROUP][MAX_VECTORS];
    for (int q = 0; q < rows; q++)
        for (int v = 0; v < nv; v++)
            wr[q][v] = vf_load_part(w + (long)(g * DENSE_GROUP + q) * out_dim + v * VF_LEN,
                                    v == nv - 1 ? lanes : VF_LEN);
    /* Read once: the stores below are of bytes to GCC (memcpy), and could
     * otherwise be the list's own. */
    const int k0 = in->start[g], k1 = in->start[g + 1];
    const float *restrict values = in->value;
    const int *restrict samples = in->sample;
    for (int k = k0; k < k1; k++) {
        const float *restrict x = values + (long)k * DENSE_GROUP;
        float *restrict y = out + (long)samples[k] * out_dim;
        vf acc[MAX_VECTORS];
        for (int v = 0; v < nv; v++)
            acc[v] = vf_load_part(y + v * VF_LEN, v == nv - 1 ? lanes : VF_LEN);
        for (int q = 0; q < rows; q++) {
            const vf xq = vf_splat(x[q]);
            for (int v = 0; v < nv; v++)
                acc[v] = vf_madd(xq, wr[q][v], acc[v]);
        }
        for (int v = 0; v < nv; v++)
            vf_store_part(y + v * VF_LEN, acc[v], v == nv - 1 ? lanes : VF_LEN);
    }
}

/* forward_group over the groups [g0, g1) of every list j, into the sums at
 * out + base[j] rows, for one chunk of outputs.  A zero input of a listed
 * group adds 0 * w, which changes no sum but for the sign of a zero sum: so
 * the sums are those of the plain loop over inputs. */
static inline __attribute__((always_inline)) void
forward_block(float *restrict out, int nv, int lanes, const tr_dense_inputs *const *lists,
              const int *base, int n_lists, const float *restrict w, int g0, int g1,
              int in_dim, int out_dim)
{
    for (int g = g0; g < g1; g++) {
        const int rows = in_dim - g * DENSE_GROUP;
        for (int j = 0; j < n_lists; j++) {
            if (lists[j]->start[g] == lists[j]->start[g + 1])
                continue;
            float *restrict block = out + (long)base[j] * out_dim;
            if (rows >= DENSE_GROUP)
                forward_group(block, nv, lanes, DENSE_GROUP, lists[j], g, w, out_dim);
            else
                forward_group(block, nv, lanes, rows, lists[j], g, w, out_dim);
        }
    }
}

void tr_dense_forward_rows(float *restrict out, const tr_dense_inputs *const *lists,
                           const int *base, int n_lists, const float *restrict w, int i0,
                           int i1, int in_dim, int out_dim)
{
    const int g0 = group_count(i0), g1 = group_count(i1);
#define FORWARD_CHUNK(o, nv, lanes)                                                     \
    forward_block(out + (o), nv, lanes, lists, base, n_lists, w + (o), g0, g1, in_dim, out_dim)
    FOR_OUTPUT_CHUNKS(out_dim, MAX_VECTORS, FORWARD_CHUNK);
#undef FORWARD_CHUNK
}

void tr_dense_forward(float *restrict out, const tr_dense_inputs *restrict in,
                      const float *restrict w, const float *restrict b, int n,
                      int in_dim, int out_dim, int relu)
{
    for (int s = 0; s < n; s++)
        memcpy(out + (long)s * out_dim, b, sizeof(float) * (size_t)out_dim);
    const tr_dense_inputs *list = in;
    const int base = 0;
    tr_dense_forward_rows(out, &list, &base, 1, w, 0, in_dim, in_dim, out_dim);
    if (relu)
        tr_dense_relu(out, (long)n * out_dim);
}

void tr_dense_sum_parts(float *restrict out, const float *const *parts, int n_parts,
                        const float *restrict b, int n, int out_dim, int relu)
{
    for (int s = 0; s < n; s++) {
        float *restrict y = out + (long)s * out_dim;
        memcpy(y, b, sizeof(float) * (size_t)out_dim);
        for (int p = 0; p < n_parts; p++) {
            const float *restrict q = parts[p] + (long)s * out_dim;
            for (int o = 0; o < out_dim; o++)
                y[o] += q[o];
        }
    }
    if (relu)
        tr_dense_relu(out, (long)n * out_dim);
}

/* The `rows` rows of d_w of group g, over one chunk of nv vectors (the last
 * `lanes` wide): each the sum over the samples listed for the group of their
 * value times their d_out row, in sample order, all of the group's sums in
 * registers.  Inlined with constant nv and, but for a last partial group,
 * rows. */
static inline __attribute__((always_inline)) void
weight_gradient_group(float *restrict d_w, int nv, int lanes, int rows,
                      const tr_dense_inputs *restrict in, int g, const float *restrict d_out,
                      int out_dim)
{
    vf acc[DENSE_GROUP][MAX_VECTORS];
    for (int q = 0; q < rows; q++)
        for (int v = 0; v < nv; v++)
            acc[q][v] = vf_splat(0.0f);
    const int k0 = in->start[g], k1 = in->start[g + 1];
    const float *restrict values = in->value;
    const int *restrict samples = in->sample;
    for (int k = k0; k < k1; k++) {
        const float *restrict x = values + (long)k * DENSE_GROUP;
        const float *restrict d = d_out + (long)samples[k] * out_dim;
        vf dv[MAX_VECTORS];
        for (int v = 0; v < nv; v++)
            dv[v] = vf_load_part(d + v * VF_LEN, v == nv - 1 ? lanes : VF_LEN);
        for (int q = 0; q < rows; q++) {
            const vf xq = vf_splat(x[q]);
            for (int v = 0; v < nv; v++)
                acc[q][v] = vf_madd(xq, dv[v], acc[q][v]);
        }
    }
    for (int q = 0; q < rows; q++)
        for (int v = 0; v < nv; v++)
            vf_store_part(d_w + (long)(g * DENSE_GROUP + q) * out_dim + v * VF_LEN, acc[q][v],
                          v == nv - 1 ? lanes : VF_LEN);
}

static inline __attribute__((always_inline)) void
weight_gradient_block(float *restrict d_w, int nv, int lanes, const tr_dense_inputs *restrict in,
                      const float *restrict d_out, int g0, int g1, int in_dim, int out_dim,
                      int skip_empty)
{
    for (int g = g0; g < g1; g++) {
        if (skip_empty && in->start[g] == in->start[g + 1])
            continue;
        const int rows = in_dim - g * DENSE_GROUP;
        if (rows >= DENSE_GROUP)
            weight_gradient_group(d_w, nv, lanes, DENSE_GROUP, in, g, d_out, out_dim);
        else
            weight_gradient_group(d_w, nv, lanes, rows, in, g, d_out, out_dim);
    }
}

/* A group's DENSE_GROUP values, and the masks of comparing them. */
typedef float group_floats __attribute__((vector_size(DENSE_GROUP * sizeof(float))));
typedef int32_t group_ints __attribute__((vector_size(DENSE_GROUP * sizeof(int32_t))));

/* row_used[i] = whether input i is nonzero in some listed sample, for the
 * inputs of groups [g0, g1): a group's entries compared DENSE_GROUP at a
 * time (as floats: a -0.0 from the ReLU is a zero). */
static void mark_used_rows(uint8_t *restrict row_used, const tr_dense_inputs *restrict in,
                           int g0, int g1, int in_dim)
{
    const float *restrict values = in->value;
    for (int g = g0; g < g1; g++) {
        group_ints lit = {0};
        for (int k = in->start[g]; k < in->start[g + 1]; k++) {
            group_floats x;
            memcpy(&x, values + (long)k * DENSE_GROUP, sizeof x);
            lit |= x != 0.0f;
        }
        for (int q = 0; q < DENSE_GROUP && g * DENSE_GROUP + q < in_dim; q++)
            row_used[g * DENSE_GROUP + q] = lit[q] != 0;
    }
}

/* With row_used, the groups no sample lit are skipped, and their rows keep
 * what they held; the other rows of a listed group get their sums, zeros
 * included. */
static void weight_gradient(float *restrict d_w, const tr_dense_inputs *restrict in,
                            const float *restrict d_out, int g0, int g1, int in_dim,
                            int out_dim, uint8_t *restrict row_used)
{
    if (row_used)
        mark_used_rows(row_used, in, g0, g1, in_dim);
    const int skip = row_used != NULL;
#define GRADIENT_CHUNK(o, nv, lanes)                                                    \
    weight_gradient_block(d_w + (o), nv, lanes, in, d_out + (o), g0, g1, in_dim, out_dim, skip)
    FOR_OUTPUT_CHUNKS(out_dim, MAX_VECTORS, GRADIENT_CHUNK);
#undef GRADIENT_CHUNK
}

void tr_dense_weight_gradient_rows(float *restrict d_w, const tr_dense_inputs *restrict in,
                                   const float *restrict d_out, int i0, int i1, int in_dim,
                                   int out_dim, uint8_t *restrict row_used)
{
    weight_gradient(d_w, in, d_out, group_count(i0), group_count(i1), in_dim, out_dim, row_used);
}

/* One stage of the VF_LEN x VF_LEN transpose below: rows r and r + h
 * (r & h == 0) swap their off-diagonal blocks of h lanes.
 * __builtin_shufflevector (GCC 12 and clang) needs its lane numbers as
 * constants, hence one stage each, for each vector width. */
#define LANES(...) __VA_ARGS__
#define TRANSPOSE_STAGE(name, h, low, high)                                             \
    static inline void name(vf *a)                                                      \
    {                                                                                   \
        for (int r = 0; r < VF_LEN; r++)                                                \
            if (!(r & (h))) {                                                           \
                const vf x = a[r], y = a[r + (h)];                                      \
                a[r] = __builtin_shufflevector(x, y, LANES low);                        \
                a[r + (h)] = __builtin_shufflevector(x, y, LANES high);                 \
            }                                                                           \
    }

#if VF_LEN == 16
TRANSPOSE_STAGE(stage8, 8, (0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                (8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
TRANSPOSE_STAGE(stage4, 4, (0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
                (4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31))
TRANSPOSE_STAGE(stage2, 2, (0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
                (2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31))
TRANSPOSE_STAGE(stage1, 1, (0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
                (1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31))
#define TRANSPOSE_STAGES(a) (stage8(a), stage4(a), stage2(a), stage1(a))
#elif VF_LEN == 8
TRANSPOSE_STAGE(stage4, 4, (0, 1, 2, 3, 8, 9, 10, 11), (4, 5, 6, 7, 12, 13, 14, 15))
TRANSPOSE_STAGE(stage2, 2, (0, 1, 8, 9, 4, 5, 12, 13), (2, 3, 10, 11, 6, 7, 14, 15))
TRANSPOSE_STAGE(stage1, 1, (0, 8, 2, 10, 4, 12, 6, 14), (1, 9, 3, 11, 5, 13, 7, 15))
#define TRANSPOSE_STAGES(a) (stage4(a), stage2(a), stage1(a))
#else
TRANSPOSE_STAGE(stage2, 2, (0, 1, 4, 5), (2, 3, 6, 7))
TRANSPOSE_STAGE(stage1, 1, (0, 4, 2, 6), (1, 5, 3, 7))
#define TRANSPOSE_STAGES(a) (stage2(a), stage1(a))
#endif

/* dst[c][r] = src[r][c] for a VF_LEN x VF_LEN tile (row strides in floats),
 * in log2(VF_LEN) stages that each swap the off-diagonal blocks of size h
 * within blocks of 2h: two-register shuffles instead of scattered scalar
 * moves. */
static void transpose_tile(float *restrict dst, long dst_stride, const float *restrict src,
                           long src_stride)
{
    vf a[VF_LEN];
    for (int r = 0; r < VF_LEN; r++)
        a[r] = vf_load(src + r * src_stride);
    TRANSPOSE_STAGES(a);
    for (int r = 0; r < VF_LEN; r++)
        vf_store(dst + r * dst_stride, a[r]);
}

void tr_dense_transpose(float *restrict dst, const float *restrict src, int rows, int cols)
{
    const int rt = rows / VF_LEN * VF_LEN, ct = cols / VF_LEN * VF_LEN;
    for (int r = 0; r < rt; r += VF_LEN)
        for (int c = 0; c < ct; c += VF_LEN)
            transpose_tile(dst + (long)c * rows + r, rows, src + (long)r * cols + c, cols);
    /* The edges that do not fill a tile. */
    for (int r = 0; r < rows; r++)
        for (int c = r < rt ? ct : 0; c < cols; c++)
            dst[(long)c * rows + r] = src[(long)r * cols + c];
}

/* d_in[s] = sum over o of d_out[s][o] * w[.][o]: with w transposed into wt,
 * each term is a contiguous row, and zero gradients (ReLU) are skipped. */
static void input_gradient(float *restrict d_in, const float *restrict d_out,
                           const float *restrict w, float *restrict wt, int n, int in_dim,
                           int out_dim)
{
    tr_dense_transpose(wt, w, in_dim, out_dim);
    for (int s = 0; s < n; s++) {
        const float *restrict g = d_out + (long)s * out_dim;
        float *restrict di = d_in + (long)s * in_dim;
        memset(di, 0, sizeof(float) * (size_t)in_dim);
        for (int o = 0; o < out_dim; o++) {
            const float go = g[o];
            if (go == 0.0f)
                continue;
            const float *restrict wo = wt + (long)o * in_dim;
            for (int i = 0; i < in_dim; i++)
                di[i] = madd(go, wo[i], di[i]);
        }
    }
}

void tr_dense_bias_gradient(float *restrict d_b, const float *restrict d_out, int n, int out_dim,
                            int accumulate)
{
    if (!accumulate)
        memset(d_b, 0, sizeof(float) * (size_t)out_dim);
    for (int s = 0; s < n; s++)
        for (int o = 0; o < out_dim; o++)
            d_b[o] += d_out[(long)s * out_dim + o];
}

void tr_dense_backward(float *restrict d_in, float *restrict d_w, float *restrict d_b,
                       const float *restrict d_out, const tr_dense_inputs *restrict in,
                       const float *restrict w, float *restrict wt, int n, int in_dim,
                       int out_dim, uint8_t *restrict row_used)
{
    tr_dense_bias_gradient(d_b, d_out, n, out_dim, 0);
    if (d_w)
        weight_gradient(d_w, in, d_out, 0, group_count(in_dim), in_dim, out_dim, row_used);
    if (d_in)
        input_gradient(d_in, d_out, w, wt, n, in_dim, out_dim);
}

/* out[s][o .. o + nv*VF_LEN) for ns samples, where the last vector may hold
 * only `lanes` outputs; the sums stay in registers while the weight rows
 * stream past.  Inlined with constant ns and nv. */
static inline __attribute__((always_inline)) void
forward_small_block(float *restrict out, const float *restrict in, const float *restrict w,
                    const float *restrict b, int ns, int nv, int lanes, int in_dim,
                    int out_dim)
{
    vf acc[SMALL_SAMPLES][SMALL_VECTORS];
    for (int s = 0; s < ns; s++)
        for (int v = 0; v < nv; v++)
            acc[s][v] = vf_load_part(b + v * VF_LEN, v == nv - 1 ? lanes : VF_LEN);
    for (int i = 0; i < in_dim; i++) {
        vf wi[SMALL_VECTORS];
        for (int v = 0; v < nv; v++)
            wi[v] = vf_load_part(w + (long)i * out_dim + v * VF_LEN,
                                 v == nv - 1 ? lanes : VF_LEN);
        for (int s = 0; s < ns; s++) {
            const vf x = vf_splat(in[(long)s * in_dim + i]);
            for (int v = 0; v < nv; v++)
                acc[s][v] = vf_madd(x, wi[v], acc[s][v]);
        }
    }
    for (int s = 0; s < ns; s++)
        for (int v = 0; v < nv; v++)
            vf_store_part(out + (long)s * out_dim + v * VF_LEN, acc[s][v],
                          v == nv - 1 ? lanes : VF_LEN);
}

void tr_dense_forward_small(float *restrict out, const float *restrict in,
                            const float *restrict w, const float *restrict b, int n, int in_dim,
                            int out_dim, int relu)
{
    int s = 0;
#define SAMPLES_CHUNK(o, nv, lanes)                                                     \
    forward_small_block(out + (long)s * out_dim + (o), in + (long)s * in_dim, w + (o),   \
                        b + (o), SMALL_SAMPLES, nv, lanes, in_dim, out_dim)
#define SAMPLE_CHUNK(o, nv, lanes)                                                      \
    forward_small_block(out + (long)s * out_dim + (o), in + (long)s * in_dim, w + (o),   \
                        b + (o), 1, nv, lanes, in_dim, out_dim)
    for (; n - s >= SMALL_SAMPLES; s += SMALL_SAMPLES)
        FOR_OUTPUT_CHUNKS(out_dim, SMALL_VECTORS, SAMPLES_CHUNK);
    for (; s < n; s++)
        FOR_OUTPUT_CHUNKS(out_dim, SMALL_VECTORS, SAMPLE_CHUNK);
#undef SAMPLES_CHUNK
#undef SAMPLE_CHUNK
    if (relu)
        tr_dense_relu(out, (long)n * out_dim);
}

/* d_w[r][o .. o + nv*VF_LEN) for nr rows, the last vector possibly partial;
 * the sums stay in registers while the samples' gradient rows stream past.
 * Inlined with constant nr and nv. */
static inline __attribute__((always_inline)) void
weight_gradient_small_block(float *restrict d_w, const float *restrict in,
                            const float *restrict d_out, int nr, int nv, int lanes, int n,
                            int in_dim, int out_dim, int accumulate)
{
    vf acc[SMALL_ROWS][SMALL_GRAD_VECTORS];
    for (int r = 0; r < nr; r++)
        for (int v = 0; v < nv; v++)
            acc[r][v] = accumulate ? vf_load_part(d_w + (long)r * out_dim + v * VF_LEN,
                                                  v == nv - 1 ? lanes : VF_LEN)
                                   : vf_splat(0.0f);
    for (int s = 0; s < n; s++) {
        vf d[SMALL_GRAD_VECTORS];
        for (int v = 0; v < nv; v++)
            d[v] = vf_load_part(d_out + (long)s * out_dim + v * VF_LEN,
                                v == nv - 1 ? lanes : VF_LEN);
        for (int r = 0; r < nr; r++) {
            const vf x = vf_splat(in[(long)s * in_dim + r]);
            for (int v = 0; v < nv; v++)
                acc[r][v] = vf_madd(x, d[v], acc[r][v]);
        }
    }
    for (int r = 0; r < nr; r++)
        for (int v = 0; v < nv; v++)
            vf_store_part(d_w + (long)r * out_dim + v * VF_LEN, acc[r][v],
                          v == nv - 1 ? lanes : VF_LEN);
}

/* d_in[s][i0 + ..] = sum over o of d_out[s][o] * wt[o][i0 + ..] for np rows
 * of samples and nv vectors of inputs (the last `lanes` wide) from d_in and
 * wt: each wt vector loaded once serves np rows.  Each sum runs over o in
 * order from 0, whatever the tile, so the tiles do not change the bits.
 * Zero gradients (the ReLU's, about half of them, in no pattern a branch
 * predictor could learn) are multiplied like the others: skipping them cost
 * more in mispredicted branches than their products, and adding 0 * w
 * leaves a finite sum as it was.  Inlined with constant np and nv. */
static inline __attribute__((always_inline)) void
input_gradient_tile(float *restrict d_in, const float *restrict d_out,
                    const float *restrict wt, int np, int nv, int lanes, int in_dim,
                    int out_dim)
{
    vf acc[INPUT_ROWS][INPUT_VECTORS];
    for (int m = 0; m < np; m++)
        for (int v = 0; v < nv; v++)
            acc[m][v] = vf_splat(0.0f);
    for (int o = 0; o < out_dim; o++) {
        vf w[INPUT_VECTORS];
        for (int v = 0; v < nv; v++)
            w[v] = vf_load_part(wt + (long)o * in_dim + v * VF_LEN, v == nv - 1 ? lanes : VF_LEN);
        for (int m = 0; m < np; m++) {
            const vf g = vf_splat(d_out[(long)m * out_dim + o]);
            for (int v = 0; v < nv; v++)
                acc[m][v] = vf_madd(g, w[v], acc[m][v]);
        }
    }
    for (int m = 0; m < np; m++)
        for (int v = 0; v < nv; v++)
            vf_store_part(d_in + (long)m * in_dim + v * VF_LEN, acc[m][v],
                          v == nv - 1 ? lanes : VF_LEN);
}

/* np rows of the input gradient, in tiles of INPUT_VECTORS vectors across.
 * Inlined with a constant np. */
static inline __attribute__((always_inline)) void
input_gradient_rows(float *restrict d_in, const float *restrict d_out,
                    const float *restrict wt, int np, int in_dim, int out_dim)
{
#define TILE(i, nv, lanes)                                                              \
    input_gradient_tile(d_in + (i), d_out, wt + (i), np, nv, lanes, in_dim, out_dim)
    FOR_OUTPUT_CHUNKS(in_dim, INPUT_VECTORS, TILE);
#undef TILE
}

/* The input gradient with wt ([out_dim][in_dim]): tiles of INPUT_ROWS
 * samples by INPUT_VECTORS vectors of inputs, the samples' output gradients
 * in the L1 cache while wt streams past. */
void tr_dense_input_gradient_small(float *restrict d_in, const float *restrict d_out,
                                   const float *restrict wt, int n, int in_dim, int out_dim)
{
    _Static_assert(INPUT_ROWS == 6, "a case for each count of rows");
    for (int s = 0; s < n; s += INPUT_ROWS) {
        float *restrict d = d_in + (long)s * in_dim;
        const float *restrict g = d_out + (long)s * out_dim;
        switch (n - s < INPUT_ROWS ? n - s : INPUT_ROWS) {
        case 1: input_gradient_rows(d, g, wt, 1, in_dim, out_dim); break;
        case 2: input_gradient_rows(d, g, wt, 2, in_dim, out_dim); break;
        case 3: input_gradient_rows(d, g, wt, 3, in_dim, out_dim); break;
        case 4: input_gradient_rows(d, g, wt, 4, in_dim, out_dim); break;
        case 5: input_gradient_rows(d, g, wt, 5, in_dim, out_dim); break;
        default: input_gradient_rows(d, g, wt, INPUT_ROWS, in_dim, out_dim); break;
        }
    }
}

void tr_dense_weight_gradient_small(float *restrict d_w, float *restrict d_b,
                                    const float *restrict d_out, const float *restrict in, int n,
                                    int in_dim, int out_dim, int accumulate)
{
    tr_dense_bias_gradient(d_b, d_out, n, out_dim, accumulate);
    /* The samples go in chunks whose inputs and gradients stay in the L2
     * cache while every block of the weight gradient passes over them; a
     * block's sums carry on from one chunk to the next in d_w, in the same
     * order, so the bits do not depend on the chunks. */
    for (int s0 = 0; s0 < n; s0 += GRAD_CHUNK) {
        const int ns = n - s0 < GRAD_CHUNK ? n - s0 : GRAD_CHUNK, more = accumulate || s0 > 0;
        const float *restrict x = in + (long)s0 * in_dim, *restrict g = d_out + (long)s0 * out_dim;
        int i = 0;
#define ROWS_CHUNK(o, nv, lanes)                                                        \
    weight_gradient_small_block(d_w + (long)i * out_dim + (o), x + i, g + (o), SMALL_ROWS, \
                                nv, lanes, ns, in_dim, out_dim, more)
#define ROW_CHUNK(o, nv, lanes)                                                         \
    weight_gradient_small_block(d_w + (long)i * out_dim + (o), x + i, g + (o), 1, nv,    \
                                lanes, ns, in_dim, out_dim, more)
        for (; in_dim - i >= SMALL_ROWS; i += SMALL_ROWS)
            FOR_OUTPUT_CHUNKS(out_dim, SMALL_GRAD_VECTORS, ROWS_CHUNK);
        for (; i < in_dim; i++)
            FOR_OUTPUT_CHUNKS(out_dim, SMALL_GRAD_VECTORS, ROW_CHUNK);
#undef ROWS_CHUNK
#undef ROW_CHUNK
    }
}

void tr_dense_backward_small(float *restrict d_in, float *restrict d_w, float *restrict d_b,
                             const float *restrict d_out, const float *restrict in,
                             const float *restrict w, float *restrict wt, int n, int in_dim,
                             int out_dim)
{
    tr_dense_weight_gradient_small(d_w, d_b, d_out, in, n, in_dim, out_dim, 0);
    if (!d_in)
        return;
    tr_dense_transpose(wt, w, in_dim, out_dim);
    tr_dense_input_gradient_small(d_in, d_out, wt, n, in_dim, out_dim);
}

void tr_dense_relu_backward(float *restrict d, const float *restrict out, long count)
{
    for (long k = 0; k < count; k++)
        d[k] = out[k] > 0.0f ? d[k] : 0.0f;
}
