#include "ckpt.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "fileio.h"

static const char MAGIC[8] = {'T', 'R', 'N', 'R', 'C', 'K', 'P', 'T'};
#define ORDER_TAG 0x01020304u
/* A generous bound: 2^28 float parameters is a 1 GiB file. */
#define CKPT_MAX_BYTES ((size_t)1 << 30)

static uint8_t *put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
    return p + 4;
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static size_t header_len(int n_layers)
{
    return 24 + 4 * (size_t)(n_layers + 1) + 8;
}

/* Lists the real tensors of m in file order (weights then biases, layer by
 * layer); returns how many. */
static int list_tensors(const mlp *m, float **ptr, size_t *count)
{
    int k = 0;
    for (int l = 0; l < m->shape.n_layers; l++) {
        size_t in = (size_t)m->shape.sizes[l], out = (size_t)m->shape.sizes[l + 1];
        ptr[k] = m->layer[l].w;
        count[k++] = in * out;
        ptr[k] = m->layer[l].b;
        count[k++] = out;
    }
    return k;
}

int ckpt_encode(const mlp *m, uint8_t **data, size_t *len, tr_error *err)
{
    size_t n_params = mlp_param_count(&m->shape);
    size_t total = header_len(m->shape.n_layers) + 4 * n_params + 4;
    uint8_t *buf = malloc(total);
    if (!buf)
        return error_set(err, "out of memory for a checkpoint of %zu bytes", total);
    uint8_t *p = buf;
    memcpy(p, MAGIC, 8);
    p = put32(p + 8, CKPT_VERSION);
    p = put32(p, ORDER_TAG);
    p = put32(p, (uint32_t)sizeof(float));
    p = put32(p, (uint32_t)m->shape.n_layers);
    for (int l = 0; l <= m->shape.n_layers; l++)
        p = put32(p, (uint32_t)m->shape.sizes[l]);
    p = put32(p, (uint32_t)(n_params & 0xffffffffu));
    p = put32(p, (uint32_t)((uint64_t)n_params >> 32));
    float *ptr[2 * MLP_MAX_LAYERS];
    size_t count[2 * MLP_MAX_LAYERS];
    int n = list_tensors(m, ptr, count);
    for (int t = 0; t < n; t++) {
        for (size_t k = 0; k < count[t]; k++) {
            uint32_t bits;
            memcpy(&bits, &ptr[t][k], 4);
            p = put32(p, bits);
        }
    }
    uLong crc = crc32(0L, Z_NULL, 0);
    crc = crc32_z(crc, buf, (size_t)(p - buf));
    put32(p, (uint32_t)crc);
    *data = buf;
    *len = total;
    return 0;
}

int ckpt_decode(mlp *m, const uint8_t *data, size_t len, const char *name,
                tr_error *err)
{
    memset(m, 0, sizeof *m);
    if (len < 28)
        return error_set(err, "%s: too short for a checkpoint (%zu bytes)", name, len);
    if (memcmp(data, MAGIC, 8) != 0)
        return error_set(err, "%s: not a trainer checkpoint (bad magic)", name);
    uint32_t version = get32(data + 8);
    if (version != CKPT_VERSION)
        return error_set(err, "%s: checkpoint format version %u, this program reads %d",
                         name, version, CKPT_VERSION);
    if (get32(data + 12) != ORDER_TAG)
        return error_set(err, "%s: byte-order tag 0x%08x does not match 0x%08x", name,
                         get32(data + 12), ORDER_TAG);
    if (get32(data + 16) != sizeof(float))
        return error_set(err, "%s: %u-byte floats, expected 4", name, get32(data + 16));
    uint32_t n_layers = get32(data + 20);
    if (n_layers < 1 || n_layers > MLP_MAX_LAYERS)
        return error_set(err, "%s: %u layers (1 to %d supported)", name, n_layers,
                         MLP_MAX_LAYERS);
    size_t hlen = header_len((int)n_layers);
    if (len < hlen + 4)
        return error_set(err, "%s: truncated header", name);
    uint32_t stored_crc = get32(data + len - 4);
    uint32_t crc = (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), data, len - 4);
    if (crc != stored_crc)
        return error_set(err, "%s: checksum mismatch (file says %08x, contents give "
                         "%08x): the file is corrupt or truncated", name, stored_crc, crc);
    mlp_shape s = {.n_layers = (int)n_layers};
    for (uint32_t l = 0; l <= n_layers; l++) {
        uint32_t v = get32(data + 24 + 4 * l);
        if (v < 1 || v > MLP_MAX_WIDTH)
            return error_set(err, "%s: layer size %u out of range", name, v);
        s.sizes[l] = (int)v;
    }
    uint64_t n_params = (uint64_t)get32(data + hlen - 8) |
                        (uint64_t)get32(data + hlen - 4) << 32;
    size_t expect = mlp_param_count(&s);
    if (n_params != expect)
        return error_set(err, "%s: %llu parameters stored, the layer sizes need %zu",
                         name, (unsigned long long)n_params, expect);
    if (len != hlen + 4 * expect + 4)
        return error_set(err, "%s: %zu bytes, the layer sizes need %zu", name, len,
                         hlen + 4 * expect + 4);
    if (mlp_init(m, &s, err))
        return -1;
    const uint8_t *p = data + hlen;
    float *ptr[2 * MLP_MAX_LAYERS];
    size_t count[2 * MLP_MAX_LAYERS];
    int n = list_tensors(m, ptr, count);
    for (int t = 0; t < n; t++) {
        for (size_t k = 0; k < count[t]; k++, p += 4) {
            uint32_t bits = get32(p);
            memcpy(&ptr[t][k], &bits, 4);
        }
    }
    return 0;
}

int ckpt_save(const mlp *m, const char *path, tr_error *err)
{
    uint8_t *data;
    size_t len;
    if (ckpt_encode(m, &data, &len, err))
        return -1;
    int status = file_write_atomic(path, data, len, err);
    free(data);
    return status;
}

int ckpt_load(mlp *m, const char *path, tr_error *err)
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
