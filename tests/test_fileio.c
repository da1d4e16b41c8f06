/* Files replaced together or not at all, and the output directory's lock. */
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fileio.h"
#include "testutil.h"

static const char *dir;

static void put(const char *name, const char *text)
{
    test_write_file(dir, name, text, strlen(text), 0);
}

/* The contents of dir/name, or "(none)" when it does not exist. */
static const char *contents(const char *name)
{
    static char buf[256];
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        return "(none)";
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Files in dir whose name holds ".tmp-": temporary files or kept versions. */
static int leftovers(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));)
        n += strstr(e->d_name, ".tmp-") != NULL;
    if (d)
        closedir(d);
    return n;
}

static void add(tr_file_batch *b, const char *name, const char *text)
{
    char path[4096];
    tr_error err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    CHECK(tr_file_batch_add(b, path, text, strlen(text), &err) == 0, "%s", err.msg);
}

static void test_batch(void)
{
    tr_error err = {{0}};
    put("a", "old a");
    put("c", "old c");
    tr_file_batch b = {0};
    add(&b, "a", "new a");
    add(&b, "b", "new b");
    add(&b, "c", "new c");
    CHECK(tr_file_batch_commit(&b, &err) == 0, "%s", err.msg);
    CHECK(strcmp(contents("a"), "new a") == 0 && strcmp(contents("b"), "new b") == 0 &&
              strcmp(contents("c"), "new c") == 0, "a whole batch was not committed");
    CHECK(leftovers() == 0, "%d temporary files left after a commit", leftovers());

    /* The third rename fails (d is a directory): the two files replaced
     * before it get their earlier versions back, the new file e goes. */
    put("a", "old a");
    char path[4096];
    snprintf(path, sizeof path, "%s/d", dir);
    CHECK(mkdir(path, 0777) == 0, "mkdir %s", path);
    b = (tr_file_batch){0};
    add(&b, "a", "newer a");
    add(&b, "e", "new e");
    add(&b, "d", "new d");
    add(&b, "c", "newer c");
    CHECK(tr_file_batch_commit(&b, &err) == -1 && strstr(err.msg, "/d: cannot replace"),
          "a commit over a directory: '%s'", err.msg);
    CHECK(strcmp(contents("a"), "old a") == 0, "a is '%s' after the failed commit",
          contents("a"));
    CHECK(strcmp(contents("e"), "(none)") == 0, "e, new, was left: '%s'", contents("e"));
    CHECK(strcmp(contents("c"), "new c") == 0, "c, not reached, is '%s'", contents("c"));
    CHECK(leftovers() == 0, "%d temporary files left after a failed commit", leftovers());
    CHECK(b.n == 0, "the batch still holds %d files", b.n);
}

static void test_lock(void)
{
    tr_error err = {{0}};
    int pipefd[2], fd = -1;
    CHECK(pipe(pipefd) == 0, "pipe");
    const pid_t child = fork();
    if (child == 0) {
        /* The holder: locks, says so, waits to be killed. */
        int held;
        if (tr_file_lock_dir(dir, &held, &err))
            _exit(1);
        ssize_t w = write(pipefd[1], "1", 1);
        (void)w;
        pause();
        _exit(0);
    }
    char c = 0;
    CHECK(read(pipefd[0], &c, 1) == 1 && c == '1', "the child did not take the lock");
    char want[4096 + 64];
    snprintf(want, sizeof want, "%s is in use by process %ld", dir, (long)child);
    CHECK(tr_file_lock_dir(dir, &fd, &err) == -1 && strcmp(err.msg, want) == 0 && fd == -1,
          "a held lock: '%s', want '%s'", err.msg, want);
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    CHECK(tr_file_lock_dir(dir, &fd, &err) == 0 && fd >= 0, "after the holder died: %s", err.msg);
    tr_file_unlock_dir(fd);
    CHECK(tr_file_lock_dir("/nonexistent-dir", &fd, &err) == -1 &&
              strstr(err.msg, "/nonexistent-dir"), "a missing directory: '%s'", err.msg);
    close(pipefd[0]);
    close(pipefd[1]);
}

int main(void)
{
    dir = test_tmpdir();
    test_batch();
    test_lock();
    return test_finish("test_fileio");
}
