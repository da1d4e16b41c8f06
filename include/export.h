/* export.h - a trained model in other programs' formats.
 *
 * The model as PyTorch would write it: an nn.Sequential whose modules are,
 * layer after layer,
 *   conv2d     Conv2d(c, f, k, padding=p) (p = (k - 1) / 2 for same, else
 *              0), then ReLU() when the layer has one
 *   maxpool2d  MaxPool2d(p)
 *   flatten    Flatten()
 *   dropout    Dropout(rate)
 *   dense      Flatten() first when its input is an image (not after a
 *              Flatten), Linear(in, units), then ReLU() when it has one
 *   softmax    Softmax(dim=1)
 * taking images as [N][C][H][W] floats in [0, 1] (pixel / 255), as PyTorch
 * holds images.  Its tensors are named "<module index>.weight" and
 * "<module index>.bias", and laid out as PyTorch's: Conv2d [f][c][k][k],
 * Linear [out][in], where a Linear after the flattening of an image takes
 * its inputs in PyTorch's order (channel, row, column) rather than this
 * engine's (row, column, channel). */
#ifndef TRAINER_EXPORT_H
#define TRAINER_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model.h"

/* The nn.Sequential above as Python: "Sequential(Conv2d(1, 32, 3,
 * padding=0), ReLU(), ...)", into buf; fails if it does not fit. */
int tr_export_torch_modules(const tr_model *m, char *buf, size_t size, tr_error *err);

/* The safetensors file of m: an 8-byte little-endian header length, the
 * JSON header (each tensor's dtype "F32", shape and byte range, and in
 * "__metadata__" the format "pt", the Sequential above, the layers as
 * `--layers` writes them, the input shape and the classes), then the
 * tensors, little-endian float32, row-major, in module order.  Into a new
 * buffer (*data, freed by the caller). */
int tr_export_safetensors(const tr_model *m, uint8_t **data, size_t *len, tr_error *err);

/* The ONNX model of m (IR version 8, opset 13): input "input" [N][C][H][W]
 * float32, output "probabilities" [N][classes]; the Sequential's modules as
 * Conv, Relu, MaxPool, Flatten, Gemm (transB) and Softmax nodes (Dropout
 * does nothing in inference and has none), its tensors as initializers of
 * the same names and layouts; the class count, the input's shape and
 * layout, the preprocessing and the layers in the metadata.  Into a new
 * buffer (*data, freed by the caller). */
int tr_export_onnx(const tr_model *m, uint8_t **data, size_t *len, tr_error *err);

#endif
