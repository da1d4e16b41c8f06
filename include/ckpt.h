/* ckpt.h - the model file (model.ckpt), version 4.
 *
 * All integers and floats little-endian:
 *   offset  size      field
 *   0       8         magic "TRNRCKPT"
 *   8       4         u32 format version (4)
 *   12      4         u32 byte-order tag 0x01020304 (bytes 04 03 02 01)
 *   16      4         u32 bytes per float (4)
 *   20      4 x 3     u32 input height, width, channels
 *   32      4         u32 classes
 *   36      4         u32 N, the layers, the head included (2 to MODEL_MAX_LAYERS)
 *   40      32N       per layer: u32 kind (the numbers of layer.c's table),
 *                     then 7 u32 hyper-parameters (the layer's own words, layer.h)
 *   40+32N  4N + 12T  the tensor table: per layer u32 T_l, then per tensor
 *                     u64 floats and u32 flags (1 trainable, 0 not)
 *   ...     8 + n     the classes: u32 how pictures fit the input (0 as
 *                     MNIST's digits, 1 resized: tr_model_fit), u32 n and n
 *                     bytes of class names, one a line (classes.h; n 0: none)
 *   ...     8         u64 P, the number of parameters
 *   ...     4P        float32 parameters: per layer with parameters, its
 *                     tensors in order (dense: weights w[in][out], input-major,
 *                     then biases b[out]; conv2d: kernel [k][k][c][f], then
 *                     biases b[f])
 *   ...     4         u32 CRC-32 (zlib's) of every byte before it
 * Version 3 is version 4 without the classes, version 2 is version 3 without
 * the tensor table.  Version 1 has, from
 * offset 20, u32 L dense layers and their L + 1 sizes (inputs first, classes
 * last) instead of the input shape, classes and layers: a stack of dense
 * layers with ReLU between them and a softmax head.  Both still load.  A reader refuses any file whose fields do not all match. */
#ifndef TRAINER_CKPT_H
#define TRAINER_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model.h"

#define CKPT_VERSION 4

/* Encodes m into a new buffer (*data, freed by the caller).  Fails, naming
 * the first, on a parameter that is NaN or infinite: no reader would load
 * the file. */
int tr_ckpt_encode(const tr_model *m, uint8_t **data, size_t *len, tr_error *err);

/* Decodes a checkpoint image into a new model (free with tr_model_free).  name is
 * used in messages only.  Sizes are checked against len before allocating. */
int tr_ckpt_decode(tr_model *m, const uint8_t *data, size_t len, const char *name,
                   tr_error *err);

/* Writes m to path through a temporary file and a rename. */
int tr_ckpt_save(const tr_model *m, const char *path, tr_error *err);

/* Reads path into a new model (free with tr_model_free). */
int tr_ckpt_load(tr_model *m, const char *path, tr_error *err);

#endif
