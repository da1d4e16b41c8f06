/* conv.h - the kernels of Conv2D and MaxPooling2D on a block of n images.
 *
 * Tensors are channels-last, as Keras': an image is [h][w][c].  A Conv2D
 * kernel is [k][k][c][f] (Keras' HWIO), stride 1, with `pad` rows and columns
 * of zeros around the input (0 for padding valid, (k - 1) / 2 for same, k
 * odd).  Each output pixel is its patch of k x k x c inputs (a row) times
 * the kernel: padding valid reads the rows in place from the image
 * (conv2d_*_valid), padding same lays them out first (im2col) for the dense
 * kernels.  The *_ref functions are plain loops, the oracle the tests
 * compare both with. */
#ifndef TRAINER_CONV_H
#define TRAINER_CONV_H

#include <stdint.h>

/* Output side of a convolution over `side` inputs. */
static inline int conv_out_side(int side, int k, int pad)
{
    return side + 2 * pad - k + 1;
}

/* patches[(s * oh + y) * ow + x][(ky * k + kx) * c + ch] =
 * in[s][y + ky - pad][x + kx - pad][ch], 0 outside the image.
 * patches: [n * oh * ow][k * k * c]   in: [n][h][w][c] */
void tr_conv_im2col(float *patches, const float *in, int n, int h, int w, int c, int k, int pad);

/* The reverse: d_in (overwritten) = the sum of each patch row's gradient at
 * the inputs it came from, rows added in order.
 * d_in: [n][h][w][c]   d_patches: [n * oh * ow][k * k * c] */
void tr_conv_col2im(float *d_in, const float *d_patches, int n, int h, int w, int c, int k,
                    int pad);

/* The fast passes of a valid convolution (pad 0), which read each output
 * pixel's patch row in place: base[p] is where pixel p's starts in `in`,
 * written by tr_conv_patch_bases.  Their sums are those of the dense kernels on
 * tr_conv_im2col's rows, in the same order: the same bits.
 * base: [n * oh * ow] */
void tr_conv_patch_bases(int *base, int n, int h, int w, int c, int k);
/* out = act(conv(in, wk) + b), as tr_conv2d_forward_ref with pad 0. */
void tr_conv2d_forward_valid(float *out, const float *in, const int *base, const float *wk,
                             const float *b, int n, int h, int w, int c, int k, int f, int relu);
/* d_wk and d_b from d_out, the gradient at the (pre-activation) output: they
 * overwrite d_wk and d_b, or are added to them when accumulate is nonzero
 * (each sum carrying on in pixel order). */
void tr_conv2d_weight_gradient_valid(float *d_wk, float *d_b, const float *d_out, const float *in,
                                     const int *base, int n, int h, int w, int c, int k, int f,
                                     int accumulate);

/* out = act(conv(in, wk) + b), act ReLU when relu is nonzero.
 * out: [n][oh][ow][f]   in: [n][h][w][c]   wk: [k][k][c][f]   b: [f] */
void tr_conv2d_forward_ref(float *out, const float *in, const float *wk, const float *b, int n,
                           int h, int w, int c, int k, int pad, int f, int relu);

/* Gradients from d_out, the gradient at the (pre-activation) output: they
 * overwrite d_wk, d_b and, unless NULL, d_in. */
void tr_conv2d_backward_ref(float *d_in, float *d_wk, float *d_b, const float *d_out,
                            const float *in, const float *wk, int n, int h, int w, int c, int k,
                            int pad, int f);

/* MaxPooling2D(p), valid: out[s][y][x][ch] = the maximum of in over rows
 * y*p .. y*p+p-1 and columns x*p .. x*p+p-1 (a NaN counts only where it is
 * the window's first value).
 * out: [n][h / p][w / p][c]   in: [n][h][w][c] */
void tr_maxpool_forward(float *out, const float *in, int n, int h, int w, int c, int p);

/* d_in (overwritten): d_out at the first position of each window, in
 * row-major order, where in equals the window's maximum out; 0 elsewhere.
 * That is where the maximum was taken from, so nothing is kept between the
 * passes.  relu nonzero: in is a ReLU's output, and d_in also carries the
 * ReLU's derivative (0 where the maximum is not above 0), the bits that
 * applying it to d_in afterwards would give.
 * d_in: [n][h][w][c]   d_out: [n][h / p][w / p][c] */
void tr_maxpool_backward(float *d_in, const float *d_out, const float *in, const float *out,
                         int n, int h, int w, int c, int p, int relu);

#endif
