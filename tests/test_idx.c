/* The IDX reader and the dataset loader on good and malformed files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "dataset.h"
#include "idx.h"
#include "testutil.h"

static const char *dir;

/* Loads bytes written as name (gzipped when gz) and expects failure with a
 * message that contains `want` and the file name. */
static void expect_idx_error(const char *name, const uint8_t *bytes, size_t len, int gz,
                             const char *want)
{
    const char *path = test_write_file(dir, name, bytes, len, gz);
    tr_idx_array a;
    tr_error err = {{0}};
    int r = tr_idx_load(&a, path, 0, &err);
    CHECK(r == -1, "%s: loaded although malformed", name);
    CHECK(strstr(err.msg, want) != NULL, "%s: message '%s' lacks '%s'", name, err.msg, want);
    CHECK(strstr(err.msg, name) != NULL, "%s: message '%s' lacks the file name", name,
          err.msg);
    CHECK(a.data == NULL, "%s: data left allocated", name);
}

static void test_good_files(void)
{
    uint8_t items[2 * 3 * 4];
    for (int i = 0; i < 24; i++)
        items[i] = (uint8_t)(i * 10);
    uint32_t dims[3] = {2, 3, 4};
    size_t len;
    uint8_t *bytes = test_idx_bytes(dims, 3, items, &len);
    for (int gz = 0; gz <= 1; gz++) {
        /* The name says nothing: compression is detected from the content. */
        const char *path = test_write_file(dir, gz ? "good-gz.idx" : "good.idx.gz", bytes,
                                           len, gz);
        tr_idx_array a;
        tr_error err;
        int r = tr_idx_load(&a, path, 0, &err);
        CHECK(r == 0, "gz=%d: %s", gz, err.msg);
        if (r)
            continue;
        CHECK(a.ndim == 3 && a.dims[0] == 2 && a.dims[1] == 3 && a.dims[2] == 4,
              "gz=%d: dims %d: %u %u %u", gz, a.ndim, a.dims[0], a.dims[1], a.dims[2]);
        CHECK(a.item_size == 12, "item size %zu", a.item_size);
        CHECK(memcmp(a.data, items, 24) == 0, "gz=%d: items differ", gz);
        tr_idx_free(&a);
    }
    /* Two gzip members one after the other read as one file (as gzip does),
     * and the CRC-32 is the whole file's, as zlib computes it on the plain
     * bytes. */
    const uLong want_crc = crc32(0L, bytes, (uInt)len);
    uint8_t joined[512];
    size_t jlen = 0;
    for (int half = 0; half < 2; half++) {
        const size_t from = half ? len / 2 : 0, to = half ? len : len / 2;
        const char *path = test_write_file(dir, "half.gz", bytes + from, to - from, 1);
        FILE *f = fopen(path, "rb");
        jlen += fread(joined + jlen, 1, sizeof joined - jlen, f);
        fclose(f);
    }
    for (int kind = 0; kind < 3; kind++) {
        const char *path = kind == 2 ? test_write_file(dir, "joined.gz", joined, jlen, 0)
                                     : test_write_file(dir, "crc.idx", bytes, len, kind);
        tr_idx_array a;
        tr_error err;
        int r = tr_idx_load(&a, path, 2, &err);
        CHECK(r == 0, "kind %d: %s", kind, err.msg);
        if (r)
            continue;
        CHECK(memcmp(a.data, items, 24) == 0, "kind %d: items differ", kind);
        CHECK(a.crc == want_crc, "kind %d: CRC %08x, zlib gives %08lx", kind, a.crc, want_crc);
        tr_idx_free(&a);
    }

    tr_idx_array a;
    tr_error err;
    CHECK(tr_idx_parse(&a, bytes, len, "mem", &err) == 0, "%s", err.msg);
    CHECK(a.data && a.data[23] == 230, "idx_parse items");
    tr_idx_free(&a);
    free(bytes);
}

static void test_malformed_files(void)
{
    uint8_t items[6] = {1, 2, 3, 4, 5, 6};
    uint32_t dims[3] = {1, 2, 3};
    size_t len;
    uint8_t *good = test_idx_bytes(dims, 3, items, &len);
    uint8_t bad[64];

    expect_idx_error("empty.idx", good, 0, 0, "empty");
    expect_idx_error("empty-gz.idx", good, 0, 1, "empty");

    memcpy(bad, good, len);
    bad[0] = 0x1f;
    expect_idx_error("magic.idx", bad, len, 0, "not an IDX file");
    memcpy(bad, good, len);
    bad[2] = 0x0d; /* float, which the engine does not read */
    expect_idx_error("type.idx", bad, len, 0, "type 0x0d");
    memcpy(bad, good, len);
    bad[3] = 9;
    expect_idx_error("ndim.idx", bad, len, 0, "dimensions");

    expect_idx_error("short-header.idx", good, 6, 0, "truncated IDX header");
    expect_idx_error("truncated.idx", good, len - 1, 0, "truncated");
    expect_idx_error("truncated-gz.idx", good, len - 2, 1, "truncated");

    memcpy(bad, good, len);
    bad[len] = 7;
    expect_idx_error("trailing.idx", bad, len + 1, 0, "unexpected bytes");

    /* A header that claims 4 GiB in a 16-byte file must fail without trying
     * to allocate it. */
    uint8_t huge[16] = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 28, 0, 0, 0, 28};
    expect_idx_error("huge.idx", huge, sizeof huge, 0, "more than");
    uint8_t big[16] = {0, 0, 8, 3, 0, 1, 0, 0, 0, 0, 0, 28, 0, 0, 0, 28};
    expect_idx_error("big.idx", big, sizeof big, 1, "truncated");
    uint8_t zero[12] = {0, 0, 8, 2, 0, 0, 0, 0, 0, 0, 0, 5};
    expect_idx_error("zero-dim.idx", zero, sizeof zero, 0, "is 0");

    /* gzip magic followed by garbage, and a gzip stream with a flipped byte. */
    uint8_t garbage[40] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xde, 0xad, 0xbe, 0xef};
    expect_idx_error("corrupt-gz.idx", garbage, sizeof garbage, 0, "gzip");
    const char *path = test_write_file(dir, "flip.gz", good, len, 1);
    FILE *f = fopen(path, "r+b");
    uint8_t gzbytes[256];
    size_t glen = fread(gzbytes, 1, sizeof gzbytes, f);
    fclose(f);
    gzbytes[glen - 6] ^= 0xff; /* inside the CRC-32 trailer */
    expect_idx_error("crc-gz.idx", gzbytes, glen, 0, "gzip");
    gzbytes[glen - 6] ^= 0xff;
    expect_idx_error("cut-gz.idx", gzbytes, glen - 12, 0, "gzip");

    /* gzip data followed by anything but another gzip member. */
    const char *gz_path = test_write_file(dir, "member.gz", good, len, 1);
    f = fopen(gz_path, "rb");
    glen = fread(gzbytes, 1, sizeof gzbytes - 8, f);
    fclose(f);
    memcpy(gzbytes + glen, "junk", 4);
    expect_idx_error("junk-gz.idx", gzbytes, glen + 4, 0, "after the end of the gzip data");
    gzbytes[glen] = 0x1f;
    expect_idx_error("junk1-gz.idx", gzbytes, glen + 1, 0, "after the end of the gzip data");
    gzbytes[glen] = 0;
    expect_idx_error("zero-gz.idx", gzbytes, glen + 1, 0, "after the end of the gzip data");

    /* A header announcing 2.7 million images where 2 are expected is refused
     * from the header, not after reading (or failing to read) them. */
    uint8_t many[16] = {0, 0, 8, 3, 0, 0x29, 0x32, 0xe0, 0, 0, 0, 28, 0, 0, 0, 28};
    const char *many_path = test_write_file(dir, "many.idx", many, sizeof many, 1);
    tr_idx_array a;
    tr_error err = {{0}};
    CHECK(tr_idx_load(&a, many_path, 2, &err) == -1 &&
              strstr(err.msg, "announces 2700000 items, 2 expected"),
          "forged count: '%s'", err.msg);
    CHECK(tr_idx_load(&a, "/nonexistent/x.idx", 0, &err) == -1, "missing file loaded");
    CHECK(strstr(err.msg, "/nonexistent/x.idx") != NULL, "message '%s'", err.msg);
    free(good);
}

/* Writes an image and a label file and returns tr_dataset_load_files' status. */
static int load_pair(uint32_t n_images, uint32_t n_labels, uint8_t bad_label,
                     tr_error *err)
{
    static uint8_t pixels[10 * 4], labels[10];
    for (int i = 0; i < 10; i++)
        labels[i] = (uint8_t)(i % 10);
    if (bad_label)
        labels[n_labels - 1] = bad_label;
    uint32_t idims[3] = {n_images, 2, 2}, ldims[1] = {n_labels};
    size_t ilen, llen;
    uint8_t *ib = test_idx_bytes(idims, 3, pixels, &ilen);
    uint8_t *lb = test_idx_bytes(ldims, 1, labels, &llen);
    char images[4096], lbls[4096];
    snprintf(images, sizeof images, "%s", test_write_file(dir, "pair-images", ib, ilen, 0));
    snprintf(lbls, sizeof lbls, "%s", test_write_file(dir, "pair-labels", lb, llen, 1));
    tr_dataset d;
    int r = tr_dataset_load_files(&d, images, lbls, err);
    if (r == 0) {
        CHECK(d.n == n_images && d.dim == 4, "dataset n %u dim %u", d.n, d.dim);
        /* The fingerprint is the CRC-32 of both files' bytes, images first. */
        uLong crc = crc32(crc32(0L, ib, (uInt)ilen), lb, (uInt)llen);
        CHECK(d.fingerprint == crc, "fingerprint %08x, want %08lx", d.fingerprint, crc);
        tr_dataset_free(&d);
    }
    free(ib);
    free(lb);
    return r;
}

static void test_dataset_checks(void)
{
    tr_error err = {{0}};
    CHECK(load_pair(10, 10, 0, &err) == 0, "good pair: %s", err.msg);
    /* The image file's header is checked against the label count before its
     * images are read (a forged header could otherwise cost its size). */
    CHECK(load_pair(10, 9, 0, &err) == -1 && strstr(err.msg, "pair-images") &&
              strstr(err.msg, "announces 10 items, 9 expected"),
          "count mismatch: '%s'", err.msg);
    /* Any byte is a label: the classes are the largest label + 1. */
    CHECK(load_pair(10, 10, 10, &err) == 0, "label 10: '%s'", err.msg);
    CHECK(load_pair(10, 10, 255, &err) == 0, "label 255: '%s'", err.msg);

    /* An image file where labels belong, and the other way round (with good
     * files written again: the last pair has a bad label). */
    CHECK(load_pair(10, 10, 0, &err) == 0, "good pair: %s", err.msg);
    char images[4096];
    snprintf(images, sizeof images, "%s/pair-images", dir);
    tr_dataset d;
    CHECK(tr_dataset_load_files(&d, images, images, &err) == -1 &&
          strstr(err.msg, "expected a label file"), "images as labels: '%s'", err.msg);
    char labels[4096];
    snprintf(labels, sizeof labels, "%s/pair-labels", dir);
    CHECK(tr_dataset_load_files(&d, labels, labels, &err) == -1 &&
          strstr(err.msg, "expected an image file"), "labels as images: '%s'", err.msg);

    CHECK(tr_dataset_load_dir(&d, "/nonexistent-dir", 0, &err) == -1 &&
          strstr(err.msg, "/nonexistent-dir"), "missing dir: '%s'", err.msg);
    CHECK(tr_dataset_load_dir(&d, dir, 1, &err) == -1 &&
          strstr(err.msg, "t10k-images-idx3-ubyte"), "missing file: '%s'", err.msg);
}

static void test_split_and_gather(void)
{
    tr_dataset all;
    test_make_dataset(&all, 10, 2, 3, 1);
    tr_dataset train, val;
    tr_dataset_split(&all, 0.2, &train, &val);
    CHECK(train.n == 8 && val.n == 2, "split 10 at 0.2: %u + %u", train.n, val.n);
    CHECK(val.labels == all.labels + 8 && val.pixels == all.pixels + 8 * 6,
          "the validation part is the last 20%%");
    tr_dataset_split(&all, 0.0, &train, &val);
    CHECK(train.n == 10 && val.n == 0, "split at 0");
    /* Keras: int(60000 * (1 - 0.2)) = 48000; int(7 * 0.7) = 4. */
    tr_dataset_split(&all, 0.3, &train, &val);
    CHECK(train.n == 7, "split 10 at 0.3: %u", train.n);

    float x[2 * 6];
    uint8_t y[2];
    uint32_t idx[3] = {9, 4, 0};
    all.pixels[4 * 6 + 5] = 255;
    all.pixels[0] = 51;
    tr_dataset_gather(x, y, &all, idx, 1, 2);
    CHECK(y[0] == all.labels[4] && y[1] == all.labels[0], "gathered labels");
    CHECK(x[5] == 1.0f && x[6] == 0.2f, "scaled pixels %g %g", x[5], x[6]);
    /* The compiler-folded table holds what the division at run time gives. */
    volatile float divisor = 255.0f;
    int off = 0;
    for (int b = 0; b < 256; b++)
        off += tr_dataset_pixel_value[b] != (float)b / divisor;
    CHECK(off == 0, "%d pixel values differ from b / 255", off);
    tr_dataset_free(&all);
}

int main(void)
{
    dir = test_tmpdir();
    test_good_files();
    test_malformed_files();
    test_dataset_checks();
    test_split_and_gather();
    return test_finish("test_idx");
}
