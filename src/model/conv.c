#include "conv.h"

#include <string.h>

void conv_im2col(float *restrict patches, const float *restrict in, int n, int h, int w,
                 int c, int k, int pad)
{
    const int oh = conv_out_side(h, k, pad), ow = conv_out_side(w, k, pad);
    const size_t row = (size_t)k * (size_t)c;
    float *p = patches;
    for (int s = 0; s < n; s++) {
        const float *img = in + (size_t)s * (size_t)h * (size_t)w * (size_t)c;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int ky = 0; ky < k; ky++, p += row) {
                    const int iy = y + ky - pad;
                    const int x0 = x - pad;
                    if (iy < 0 || iy >= h) {
                        memset(p, 0, sizeof(float) * row);
                        continue;
                    }
                    /* The kernel row's k pixels are neighbours in the image:
                     * one copy, with zeros where it hangs over an edge. */
                    const int lo = x0 < 0 ? -x0 : 0;
                    const int hi = x0 + k > w ? (w - x0 > lo ? w - x0 : lo) : k;
                    const float *src = img + ((size_t)iy * (size_t)w + (size_t)(x0 + lo)) * (size_t)c;
                    float *dst = p + (size_t)lo * (size_t)c;
                    /* A plain loop: rows of a few floats, where a call to
                     * memcpy or memset costs more than the copy. */
                    for (int j = 0; j < lo * c; j++)
                        p[j] = 0.0f;
                    for (int j = 0; j < (hi - lo) * c; j++)
                        dst[j] = src[j];
                    for (int j = hi * c; j < k * c; j++)
                        p[j] = 0.0f;
                }
    }
}

void conv_col2im(float *restrict d_in, const float *restrict d_patches, int n, int h, int w,
                 int c, int k, int pad)
{
    const int oh = conv_out_side(h, k, pad), ow = conv_out_side(w, k, pad);
    memset(d_in, 0, sizeof(float) * (size_t)n * (size_t)h * (size_t)w * (size_t)c);
    const float *p = d_patches;
    for (int s = 0; s < n; s++) {
        float *img = d_in + (size_t)s * (size_t)h * (size_t)w * (size_t)c;
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int ky = 0; ky < k; ky++) {
                    const int iy = y + ky - pad;
                    for (int kx = 0; kx < k; kx++, p += c) {
                        const int ix = x + kx - pad;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            continue;
                        float *dst = img + ((size_t)iy * (size_t)w + (size_t)ix) * (size_t)c;
                        for (int ch = 0; ch < c; ch++)
                            dst[ch] += p[ch];
                    }
                }
    }
}

void conv2d_forward_ref(float *out, const float *in, const float *wk, const float *b, int n,
                        int h, int w, int c, int k, int pad, int f, int relu)
{
    const int oh = conv_out_side(h, k, pad), ow = conv_out_side(w, k, pad);
    for (int s = 0; s < n; s++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int o = 0; o < f; o++) {
                    float acc = b[o];
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int iy = y + ky - pad, ix = x + kx - pad;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            for (int ch = 0; ch < c; ch++)
                                acc += in[(((long)s * h + iy) * w + ix) * c + ch] *
                                       wk[(((long)ky * k + kx) * c + ch) * f + o];
                        }
                    out[(((long)s * oh + y) * ow + x) * f + o] = relu && acc < 0.0f ? 0.0f
                                                                                    : acc;
                }
}

void conv2d_backward_ref(float *d_in, float *d_wk, float *d_b, const float *d_out,
                         const float *in, const float *wk, int n, int h, int w, int c, int k,
                         int pad, int f)
{
    const int oh = conv_out_side(h, k, pad), ow = conv_out_side(w, k, pad);
    memset(d_wk, 0, sizeof(float) * (size_t)k * (size_t)k * (size_t)c * (size_t)f);
    memset(d_b, 0, sizeof(float) * (size_t)f);
    if (d_in)
        memset(d_in, 0, sizeof(float) * (size_t)n * (size_t)h * (size_t)w * (size_t)c);
    for (int s = 0; s < n; s++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++)
                for (int o = 0; o < f; o++) {
                    const float g = d_out[(((long)s * oh + y) * ow + x) * f + o];
                    d_b[o] += g;
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            const int iy = y + ky - pad, ix = x + kx - pad;
                            if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                                continue;
                            for (int ch = 0; ch < c; ch++) {
                                const long i = (((long)s * h + iy) * w + ix) * c + ch;
                                const long j = (((long)ky * k + kx) * c + ch) * f + o;
                                d_wk[j] += in[i] * g;
                                if (d_in)
                                    d_in[i] += wk[j] * g;
                            }
                        }
                }
}

void maxpool_forward(float *out, uint32_t *arg, const float *in, int n, int h, int w, int c,
                     int p)
{
    const int oh = h / p, ow = w / p;
    for (int s = 0; s < n; s++)
        for (int y = 0; y < oh; y++)
            for (int x = 0; x < ow; x++) {
                /* The window's first pixel, then the others in row-major
                 * order, over all channels at once (contiguous: vectors). */
                float *restrict o = out + (((long)s * oh + y) * ow + x) * c;
                uint32_t *restrict a = arg ? arg + (((long)s * oh + y) * ow + x) * c : NULL;
                const long first = (((long)s * h + (long)y * p) * w + (long)x * p) * c;
                for (int ch = 0; ch < c; ch++) {
                    o[ch] = in[first + ch];
                    if (a)
                        a[ch] = (uint32_t)(first + ch);
                }
                for (int py = 0; py < p; py++)
                    for (int px = py ? 0 : 1; px < p; px++) {
                        const long at = (((long)s * h + (long)y * p + py) * w + (long)x * p +
                                         px) * c;
                        const float *restrict v = in + at;
                        for (int ch = 0; ch < c; ch++) {
                            const int more = v[ch] > o[ch];
                            o[ch] = more ? v[ch] : o[ch];
                            if (a)
                                a[ch] = more ? (uint32_t)(at + ch) : a[ch];
                        }
                    }
            }
}

void maxpool_backward(float *d_in, const float *d_out, const uint32_t *arg, int n, int h,
                      int w, int c, int p)
{
    const long outs = (long)n * (h / p) * (w / p) * c;
    memset(d_in, 0, sizeof(float) * (size_t)n * (size_t)h * (size_t)w * (size_t)c);
    for (long o = 0; o < outs; o++)
        d_in[arg[o]] += d_out[o];
}
