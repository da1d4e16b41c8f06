#include "ckpt.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bytes.h"
#include "fileio.h"
#include "model_io.h"

static const char MAGIC[8] = {'T', 'R', 'N', 'R', 'C', 'K', 'P', 'T'};
/* A generous bound: 2^28 float parameters is a 1 GiB file. */
#define CKPT_MAX_BYTES ((size_t)1 << 30)

static size_t header_len(int n_layers)
{
    return 24 + 4 * (size_t)(n_layers + 1) + 8;
}

int ckpt_encode(const model *m, uint8_t **data, size_t *len, tr_error *err)
{
    size_t n_params = mlp_param_count(&m->shape);
    size_t total = header_len(m->shape.n_layers) + 4 * n_params + 4;
    uint8_t *buf = malloc(total);
    if (!buf)
        return error_set(err, "out of memory for a checkpoint of %zu bytes", total);
    byte_writer w = {buf};
    put_format_head(&w, MAGIC, CKPT_VERSION);
    put_shape(&w, &m->shape);
    put_u64(&w, n_params);
    put_tensors(&w, m, m->params);
    put_u32(&w, (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), buf, (size_t)(w.p - buf)));
    *data = buf;
    *len = total;
    return 0;
}

int ckpt_decode(model *m, const uint8_t *data, size_t len, const char *name,
                tr_error *err)
{
    memset(m, 0, sizeof *m);
    if (len < 28)
        return error_set(err, "%s: too short for a checkpoint (%zu bytes)", name, len);
    if (memcmp(data, MAGIC, 8) != 0)
        return error_set(err, "%s: not a trainer checkpoint (bad magic)", name);
    byte_reader r = {data + 8, data + len, 0};
    uint32_t version = get_u32(&r);
    if (version != CKPT_VERSION)
        return error_set(err, "%s: checkpoint format version %u, this program reads %d",
                         name, version, CKPT_VERSION);
    uint32_t tag = get_u32(&r);
    if (tag != ORDER_TAG)
        return error_set(err, "%s: byte-order tag 0x%08x does not match 0x%08x", name, tag,
                         ORDER_TAG);
    uint32_t float_size = get_u32(&r);
    if (float_size != sizeof(float))
        return error_set(err, "%s: %u-byte floats, expected 4", name, float_size);
    uint32_t n_layers = get_u32(&r);
    if (n_layers < 1 || n_layers > MLP_MAX_LAYERS)
        return error_set(err, "%s: %u layers (1 to %d supported)", name, n_layers,
                         MLP_MAX_LAYERS);
    size_t hlen = header_len((int)n_layers);
    if (len < hlen + 4)
        return error_set(err, "%s: truncated header", name);
    uint32_t stored_crc, crc;
    if (!crc_trailer_ok(data, len, &stored_crc, &crc))
        return error_set(err, "%s: checksum mismatch (file says %08x, contents give "
                         "%08x): the file is corrupt or truncated", name, stored_crc, crc);
    mlp_shape s;
    if (get_sizes(&r, &s, n_layers, name, err))
        return -1;
    uint64_t n_params = get_u64(&r);
    size_t expect = mlp_param_count(&s);
    if (n_params != expect)
        return error_set(err, "%s: %llu parameters stored, the layer sizes need %zu",
                         name, (unsigned long long)n_params, expect);
    if (len != hlen + 4 * expect + 4)
        return error_set(err, "%s: %zu bytes, the layer sizes need %zu", name, len,
                         hlen + 4 * expect + 4);
    if (model_init(m, &s, err))
        return -1;
    get_tensors(&r, m, m->params);
    if (model_check_finite(m, m->params, name, "the parameter", err)) {
        model_free(m);
        return -1;
    }
    return 0;
}

int ckpt_save(const model *m, const char *path, tr_error *err)
{
    uint8_t *data;
    size_t len;
    if (ckpt_encode(m, &data, &len, err))
        return -1;
    int status = file_write_atomic(path, data, len, err);
    free(data);
    return status;
}

int ckpt_load(model *m, const char *path, tr_error *err)
{
    uint8_t *data;
    size_t len;
    memset(m, 0, sizeof *m);
    if (file_read_all(path, CKPT_MAX_BYTES, &data, &len, err))
        return -1;
    int status = ckpt_decode(m, data, len, path, err);
    free(data);
    return status;
}
