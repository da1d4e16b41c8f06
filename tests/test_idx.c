/* The IDX reader and the dataset loader on good and malformed files. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    idx_array a;
    tr_error err = {{0}};
    int r = idx_load(&a, path, &err);
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
        idx_array a;
        tr_error err;
        int r = idx_load(&a, path, &err);
        CHECK(r == 0, "gz=%d: %s", gz, err.msg);
        if (r)
            continue;
        CHECK(a.ndim == 3 && a.dims[0] == 2 && a.dims[1] == 3 && a.dims[2] == 4,
              "gz=%d: dims %d: %u %u %u", gz, a.ndim, a.dims[0], a.dims[1], a.dims[2]);
        CHECK(a.item_size == 12, "item size %zu", a.item_size);
        CHECK(memcmp(a.data, items, 24) == 0, "gz=%d: items differ", gz);
        idx_free(&a);
    }
    idx_array a;
    tr_error err;
    CHECK(idx_parse(&a, bytes, len, "mem", &err) == 0, "%s", err.msg);
    CHECK(a.data && a.data[23] == 230, "idx_parse items");
    idx_free(&a);
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

    idx_array a;
    tr_error err = {{0}};
    CHECK(idx_load(&a, "/nonexistent/x.idx", &err) == -1, "missing file loaded");
    CHECK(strstr(err.msg, "/nonexistent/x.idx") != NULL, "message '%s'", err.msg);
    free(good);
}

/* Writes an image and a label file and returns dataset_load_files' status. */
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
    free(ib);
    free(lb);
    dataset d;
    int r = dataset_load_files(&d, images, lbls, err);
    if (r == 0) {
        CHECK(d.n == n_images && d.dim == 4, "dataset n %u dim %u", d.n, d.dim);
        dataset_free(&d);
    }
    return r;
}

static void test_dataset_checks(void)
{
    tr_error err = {{0}};
    CHECK(load_pair(10, 10, 0, &err) == 0, "good pair: %s", err.msg);
    CHECK(load_pair(10, 9, 0, &err) == -1 && strstr(err.msg, "9 labels"),
          "count mismatch: '%s'", err.msg);
    CHECK(load_pair(10, 10, 10, &err) == -1 && strstr(err.msg, "out of range"),
          "label 10: '%s'", err.msg);
    CHECK(load_pair(10, 10, 255, &err) == -1 && strstr(err.msg, "label 255"),
          "label 255: '%s'", err.msg);

    /* An image file where labels belong, and the other way round. */
    char images[4096];
    snprintf(images, sizeof images, "%s/pair-images", dir);
    dataset d;
    CHECK(dataset_load_files(&d, images, images, &err) == -1 &&
          strstr(err.msg, "expected a label file"), "images as labels: '%s'", err.msg);
    char labels[4096];
    snprintf(labels, sizeof labels, "%s/pair-labels", dir);
    CHECK(dataset_load_files(&d, labels, labels, &err) == -1 &&
          strstr(err.msg, "expected an image file"), "labels as images: '%s'", err.msg);

    CHECK(dataset_load_dir(&d, "/nonexistent-dir", 0, &err) == -1 &&
          strstr(err.msg, "/nonexistent-dir"), "missing dir: '%s'", err.msg);
    CHECK(dataset_load_dir(&d, dir, 1, &err) == -1 &&
          strstr(err.msg, "t10k-images-idx3-ubyte"), "missing file: '%s'", err.msg);
}

static void test_split_and_gather(void)
{
    dataset all;
    test_make_dataset(&all, 10, 2, 3, 1);
    dataset train, val;
    dataset_split(&all, 0.2, &train, &val);
    CHECK(train.n == 8 && val.n == 2, "split 10 at 0.2: %u + %u", train.n, val.n);
    CHECK(val.labels == all.labels + 8 && val.pixels == all.pixels + 8 * 6,
          "the validation part is the last 20%%");
    dataset_split(&all, 0.0, &train, &val);
    CHECK(train.n == 10 && val.n == 0, "split at 0");
    /* Keras: int(60000 * (1 - 0.2)) = 48000; int(7 * 0.7) = 4. */
    dataset_split(&all, 0.3, &train, &val);
    CHECK(train.n == 7, "split 10 at 0.3: %u", train.n);

    float x[2 * 6];
    uint8_t y[2];
    uint32_t idx[3] = {9, 4, 0};
    all.pixels[4 * 6 + 5] = 255;
    all.pixels[0] = 51;
    dataset_gather(x, y, &all, idx, 1, 2);
    CHECK(y[0] == all.labels[4] && y[1] == all.labels[0], "gathered labels");
    CHECK(x[5] == 1.0f && x[6] == 0.2f, "scaled pixels %g %g", x[5], x[6]);
    /* The compiler-folded table holds what the division at run time gives. */
    volatile float divisor = 255.0f;
    int off = 0;
    for (int b = 0; b < 256; b++)
        off += dataset_pixel_value[b] != (float)b / divisor;
    CHECK(off == 0, "%d pixel values differ from b / 255", off);
    dataset_free(&all);
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
