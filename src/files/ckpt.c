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

int tr_ckpt_encode(const tr_model *m, uint8_t **data, size_t *len, tr_error *err)
{
    if (tr_model_check_finite(m, m->params, "model.ckpt", "the parameter", err))
        return -1;
    const size_t n_params = tr_model_param_count(m);
    const size_t total = 20 + architecture_len(m) + 8 + 4 * n_params + 4;
    uint8_t *buf = malloc(total);
    if (!buf)
        return tr_error_set(err, "out of memory for a checkpoint of %zu bytes", total);
    byte_writer w = {buf};
    put_format_head(&w, MAGIC, CKPT_VERSION);
    put_architecture(&w, m);
    put_u64(&w, n_params);
    put_tensors(&w, m, m->params);
    put_u32(&w, (uint32_t)crc32_z(crc32(0L, Z_NULL, 0), buf, (size_t)(w.p - buf)));
    *data = buf;
    *len = total;
    return 0;
}

int tr_ckpt_decode(tr_model *m, const uint8_t *data, size_t len, const char *name,
                   tr_error *err)
{
    memset(m, 0, sizeof *m);
    if (len < 28)
        return tr_error_set(err, "%s: too short for a checkpoint (%zu bytes)", name, len);
    if (memcmp(data, MAGIC, 8) != 0)
        return tr_error_set(err, "%s: not a trainer checkpoint (bad magic)", name);
    byte_reader r = {data + 8, data + len - 4, 0};
    const uint32_t version = get_u32(&r);
    if (version < 1 || version > CKPT_VERSION)
        return tr_error_set(err, "%s: checkpoint format version %u, this program reads 1 to %d",
                            name, version, CKPT_VERSION);
    const uint32_t tag = get_u32(&r);
    if (tag != ORDER_TAG)
        return tr_error_set(err, "%s: byte-order tag 0x%08x does not match 0x%08x", name, tag,
                            ORDER_TAG);
    const uint32_t float_size = get_u32(&r);
    if (float_size != sizeof(float))
        return tr_error_set(err, "%s: %u-byte floats, expected 4", name, float_size);
    uint32_t stored_crc, crc;
    if (!crc_trailer_ok(data, len, &stored_crc, &crc))
        return tr_error_set(err, "%s: checksum mismatch (file says %08x, contents give "
                            "%08x): the file is corrupt or truncated", name, stored_crc, crc);
    if (version == 1 ? get_sized_model(&r, m, name, err)
                     : get_architecture(&r, m, (version >= 3 ? ARCH_TENSORS : 0) |
                                                       (version >= 4 ? ARCH_CLASSES : 0),
                                       name, err))
        return -1;
    /* Defined, not allocated: the length is checked first, so that a forged
     * layer size cannot make the reader allocate gigabytes. */
    const uint64_t n_params = get_u64(&r);
    const size_t expect = tr_model_param_count(m);
    if (r.bad || n_params != expect)
        return tr_error_set(err, "%s: %llu parameters stored, the layers need %zu", name,
                            (unsigned long long)n_params, expect);
    if ((size_t)(r.end - r.p) / 4 != expect || (size_t)(r.end - r.p) % 4)
        return tr_error_set(err, "%s: %zu bytes, the layers need %zu", name, len,
                            (size_t)(r.p - data) + 4 * expect + 4);
    if (tr_model_alloc(m, err))
        return -1;
    get_tensors(&r, m, m->params);
    if (tr_model_check_finite(m, m->params, name, "the parameter", err)) {
        tr_model_free(m);
        return -1;
    }
    return 0;
}

int tr_ckpt_save(const tr_model *m, const char *path, tr_error *err)
{
    uint8_t *data;
    size_t len;
    if (tr_ckpt_encode(m, &data, &len, err))
        return -1;
    int status = tr_file_write_atomic(path, data, len, err);
    free(data);
    return status;
}

int tr_ckpt_load(tr_model *m, const char *path, tr_error *err)
{
    uint8_t *data;
    size_t len;
    memset(m, 0, sizeof *m);
    if (tr_file_read_all(path, CKPT_MAX_BYTES, &data, &len, err))
        return -1;
    int status = tr_ckpt_decode(m, data, len, path, err);
    free(data);
    return status;
}
