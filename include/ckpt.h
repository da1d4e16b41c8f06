/* ckpt.h - the model file (model.ckpt), version 1.
 *
 * All integers and floats little-endian:
 *   offset  size      field
 *   0       8         magic "TRNRCKPT"
 *   8       4         u32 format version (1)
 *   12      4         u32 byte-order tag 0x01020304 (bytes 04 03 02 01)
 *   16      4         u32 bytes per float (4)
 *   20      4         u32 L, the number of dense layers (1 to MLP_MAX_LAYERS)
 *   24      4(L+1)    u32 layer sizes, inputs first, classes last
 *   ...     8         u64 P, the number of parameters
 *   ...     4P        float32 parameters: for each layer, its weights w[in][out]
 *                     (input-major) then its biases b[out]
 *   ...     4         u32 CRC-32 (zlib's) of every byte before it
 * A reader refuses any file whose fields do not all match. */
#ifndef TRAINER_CKPT_H
#define TRAINER_CKPT_H

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "model.h"

#define CKPT_VERSION 1

/* Encodes m into a new buffer (*data, freed by the caller). */
int ckpt_encode(const model *m, uint8_t **data, size_t *len, tr_error *err);

/* Decodes a checkpoint image into a new model (free with model_free).  name is
 * used in messages only.  Sizes are checked against len before allocating. */
int ckpt_decode(model *m, const uint8_t *data, size_t len, const char *name,
                tr_error *err);

/* Writes m to path through a temporary file and a rename. */
int ckpt_save(const model *m, const char *path, tr_error *err);

/* Reads path into a new model (free with model_free). */
int ckpt_load(model *m, const char *path, tr_error *err);

#endif
