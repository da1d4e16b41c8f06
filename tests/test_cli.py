#!/usr/bin/env python3
"""The trainer's command line: bad flags give a one-line message and status 2
with nothing written; data and checkpoint problems give status 1 and leave
earlier outputs as they were."""
import fcntl
import os
import shutil
import resource
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish, snapshot  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])


def run(args, cwd):
    return subprocess.run([TRAINER] + args, cwd=cwd, capture_output=True, text=True,
                          timeout=300)


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    mnistgen.write_dataset(data, n_train=300, n_test=50)
    work = os.path.join(tmp, "work")
    os.makedirs(work)
    out = os.path.join(work, "out")

    bad_flags = [
        (["--threads", "0"], "--threads"),
        (["--threads", "-3"], "--threads"),
        (["--threads", "8x"], "--threads"),
        (["--shards", "0"], "--shards"),
        (["--shards", "x"], "--shards"),
        (["--batch-size", "abc"], "--batch-size"),
        (["--batch-size", "0"], "--batch-size"),
        (["--validation-split", "1.5"], "--validation-split"),
        (["--validation-split", "1"], "--validation-split"),
        (["--validation-split", "-0.1"], "--validation-split"),
        (["--validation-split", "nan"], "--validation-split"),
        (["--epochs", "-1"], "--epochs"),
        (["--epochs", ""], "--epochs"),
        (["--lr", "0"], "--lr"),
        (["--lr", "fast"], "--lr"),
        (["--lr", "inf"], "--lr"),
        (["--seed", "-1"], "--seed"),
        (["--seed", "99999999999999999999999"], "--seed"),
        (["--hidden", "0,5"], "--hidden"),
        (["--hidden", "128,"], "--hidden"),
        (["--hidden", "12a"], "--hidden"),
        (["--hidden", "1,2,3,4,5,6,7,8"], "--hidden"),
        (["--frobnicate"], "--frobnicate"),
        (["--threads"], "--threads"),
        (["stray"], "stray"),
    ]
    # What the messages say of the ranges (issue 17: the seed's range was not
    # named, and --lr 1e-400 and --lr 0 got different messages).
    bad_flags += [
        (["--seed", "99999999999999999999"], "from 0 to 18446744073709551615"),
        (["--lr", "1e-400"], "'1e-400': expected a number from 0 (excluded) to 1e+06"),
        (["--lr", "0"], "'0': expected a number from 0 (excluded) to 1e+06"),
        (["--lr", "1e-300"], "'1e-300': too small for a float"),
        (["--resume", ""], "--resume '': expected the directory of a run"),
    ]
    # The callbacks' flags (issue 14): ranges, settings without their
    # callback, a validation figure watched without validation data.
    bad_flags += [
        (["--early-stopping", "-1"], "--early-stopping '-1': expected a whole number"),
        (["--early-stopping", "3", "--monitor", "val_acc"], "--monitor 'val_acc'"),
        (["--reduce-lr-on-plateau", "1"], "--reduce-lr-on-plateau '1'"),
        (["--reduce-lr-on-plateau", "0"], "--reduce-lr-on-plateau '0'"),
        (["--reduce-lr-on-plateau", "0.5", "--min-lr", "-1"], "--min-lr '-1'"),
        (["--lr-patience", "3"], "--lr-patience sets a callback that is not on"),
        (["--min-delta", "0.1"], "--min-delta sets a callback that is not on"),
        (["--no-restore-best"], "--no-restore-best sets a callback that is not on"),
        (["--monitor", "loss"], "--monitor sets a callback that is not on"),
        (["--save-best", "--min-delta", "0.1"], "--min-delta sets a callback that is not on"),
        (["--early-stopping", "3", "--validation-split", "0"],
         "--monitor val_loss needs validation data"),
        (["--save-best", "--monitor", "val_accuracy", "--validation-split", "0"],
         "--monitor val_accuracy needs validation data"),
    ]
    # The optimizer's flags (issue 25): names, ranges, and settings that its
    # optimizer or schedule does not read.
    bad_flags += [
        (["--optimizer", "adagrad"], "--optimizer 'adagrad': expected adam, adamw, sgd or"),
        (["--lr-schedule", "step"], "--lr-schedule 'step': expected constant, cosine"),
        (["--momentum", "1"], "--momentum '1'"),
        (["--momentum", "0.9"], "adam has no momentum setting (sgd and rmsprop have)"),
        (["--optimizer", "sgd", "--nesterov"], "Nesterov momentum is sgd's, with a momentum"),
        (["--optimizer", "rmsprop", "--momentum", "0.9", "--nesterov"],
         "Nesterov momentum is sgd's"),
        (["--weight-decay", "-0.1"], "--weight-decay '-0.1'"),
        (["--lr-schedule", "exponential"], "--lr-schedule exponential needs --decay-rate"),
        (["--decay-rate", "0.5"], "a decay rate goes with the exponential schedule only"),
        (["--lr-schedule", "exponential", "--decay-rate", "1.5"], "--decay-rate '1.5'"),
        (["--warmup-epochs", "30"], "a warm-up of 30 epochs in a run of 25"),
        (["--label-smoothing", "1.5"], "--label-smoothing '1.5'"),
        (["--lr-schedule", "cosine", "--reduce-lr-on-plateau", "0.5"],
         "--reduce-lr-on-plateau sets the rate itself"),
        (["--warmup-epochs", "1", "--reduce-lr-on-plateau", "0.5"],
         "--reduce-lr-on-plateau sets the rate itself"),
    ]
    # Short options (issue 28): -h is help; a word with one dash is named as
    # typed, not as the program's path or a missing value.
    bad_flags += [
        (["-epochs", "3"], "unknown option '-epochs': did you mean --epochs?"),
        (["-x"], "unknown option '-x'"),
        (["--early-stopping", "2", "--min-delta", "-0.5", "-q"], "unknown option '-q'"),
    ]
    for args, word in bad_flags:
        r = run(args + ["--data", data, "--out", out], work)
        check(r.returncode == 2, f"{args}: status {r.returncode}, want 2")
        lines = r.stderr.strip().splitlines()
        check(len(lines) == 1 and word in lines[0],
              f"{args}: want one line naming {word}, got {r.stderr!r}")
        check(r.stdout == "", f"{args}: printed {r.stdout!r}")
        check(os.listdir(work) == [],
              f"{args}: wrote something")

    r = run(["-h"], work)
    check(r.returncode == 0 and r.stdout.startswith("Usage: trainer"), f"-h: {r.stderr!r}")
    r = run(["--help"], work)
    check(r.returncode == 0 and "--threads" in r.stdout and "default: 25" in r.stdout,
          "--help shows the flags and their defaults")
    r = run(["--version"], work)
    check(r.returncode == 0 and r.stdout.startswith("trainer "), "--version")

    r = run(["--data", os.path.join(tmp, "nowhere"), "--out", out], work)
    check(r.returncode == 1 and "nowhere" in r.stderr, f"missing data dir: {r.stderr!r}")
    check(not os.path.exists(out), "missing data dir: wrote outputs")

    # A test label beyond the model's classes is named with its file and item.
    broken = os.path.join(tmp, "broken")
    mnistgen.write_dataset(broken, n_train=100, n_test=20, gz_train=False)
    path = os.path.join(broken, "t10k-labels-idx1-ubyte")
    with open(path, "r+b") as f:
        f.seek(8 + 5)
        f.write(bytes([42]))
    r = run(["--data", broken, "--out", out], work)
    check(r.returncode == 1 and r.stderr.count("\n") == 1 and
          "t10k-labels-idx1-ubyte: item 5 has label 42, the model has 10 classes" in r.stderr,
          f"a test label out of range: {r.stderr!r}")
    check(not os.path.exists(out), "a test label out of range: wrote outputs")

    # A split that leaves nothing to train on is reported as given, not rounded.
    r = run(["--data", data, "--out", out, "--validation-split", "0.9999999"], work)
    check(r.returncode == 1 and "--validation-split 0.9999999 leaves" in r.stderr,
          f"split 0.9999999: {r.stderr!r}")
    # The header mentions threads asked only when they were.
    r = run(["--data", data, "--out", out, "--epochs", "0", "--shards", "1"], work)
    check(r.returncode == 0 and "asked" not in r.stdout, f"--shards 1 alone: {r.stdout!r}")
    r = run(["--data", data, "--out", out, "--epochs", "0", "--shards", "1", "--threads", "3"],
            work)
    check(r.returncode == 0 and "(of 3 asked" in r.stdout, f"--threads 3 --shards 1: {r.stdout!r}")

    # Two runs on one --out: the second refuses at once, naming the first.
    busy = os.path.join(tmp, "busy")
    first = subprocess.Popen([TRAINER, "--data", data, "--out", busy, "--epochs", "100000",
                              "--no-plots"], cwd=work, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(busy, "history.csv")) and time.time() < deadline:
        time.sleep(0.01)
    for extra in (["--out", busy, "--epochs", "1"], ["--resume", busy, "--epochs", "100001"]):
        r = run(["--data", data] + extra, work)
        check(r.returncode == 1 and
              r.stderr.strip() == f"trainer: {busy} is in use by process {first.pid}",
              f"a second run {extra}: status {r.returncode}, {r.stderr!r}")
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=120)
    check(first.returncode == 143, f"the first run: status {first.returncode}")
    # Once it has ended, the directory is free again.
    r = run(["--data", data, "--out", busy, "--epochs", "1", "--no-plots"], work)
    check(r.returncode == 0, f"a run after the first ended: {r.stderr!r}")

    # A --resume takes the lock before it reads the directory: a run that has
    # not saved yet makes it say "in use", not that the state is missing; and
    # a held directory's saved run is not read, so it cannot be resumed from
    # under the holder (which would overwrite the holder's files).
    held = os.path.join(tmp, "held")
    os.makedirs(held)
    with open(os.path.join(held, ".trainer.lock"), "w") as lock:
        fcntl.lockf(lock, fcntl.LOCK_EX)
        r = run(["--data", data, "--resume", held, "--epochs", "2"], work)
        check(r.returncode == 1 and
              r.stderr.strip() == f"trainer: {held} is in use by process {os.getpid()}",
              f"--resume of a run before its first save: {r.stderr!r}")
        before = snapshot(busy)
        r = run(["--data", data, "--resume", busy, "--epochs", "2"], work)
        check(r.returncode == 0, f"--resume of a free run: {r.stderr!r}")
        shutil.copy(os.path.join(busy, "training.state"), held)
        r = run(["--data", data, "--resume", held, "--epochs", "3"], work)
        check(r.returncode == 1 and "is in use" in r.stderr and
              not os.path.exists(os.path.join(held, "model.ckpt")),
              f"--resume of a held run: {r.stderr!r}")
        check(before != snapshot(busy), "the free run was not resumed")
    r = run(["--data", data, "--resume", os.path.join(tmp, "no-such-run")], work)
    check(r.returncode == 1 and "no-such-run: not the directory of a run" in r.stderr,
          f"--resume of a missing directory: {r.stderr!r}")

    # Test images of another shape with the same pixel count.
    wide = os.path.join(tmp, "wide")
    mnistgen.write_dataset(wide, n_train=100, n_test=20)
    mnistgen.write_pair(wide, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 20, 2,
                        False, rows=14, cols=56)
    r = run(["--data", wide, "--out", out, "--epochs", "0"], work)
    check(r.returncode == 1 and "test images are 14x56x1 but training images 28x28x1" in r.stderr,
          f"test images of another shape: {r.stderr!r}")

    # Earlier results survive a corrupt checkpoint.
    os.makedirs(out)
    for name in ("history.csv", "model.ckpt"):
        with open(os.path.join(out, name), "w") as f:
            f.write("earlier result\n")
    before = snapshot(out)
    bad = os.path.join(tmp, "bad.ckpt")
    with open(bad, "wb") as f:
        f.write(b"TRNRCKPT" + bytes(100))
    r = run(["--data", data, "--out", out, "--load", bad, "--epochs", "1"], work)
    check(r.returncode == 1 and "bad.ckpt" in r.stderr, f"corrupt --load: {r.stderr!r}")
    check(snapshot(out) == before, "corrupt --load changed the output directory")
    r = run(["--data", data, "--out", out, "--load", os.path.join(tmp, "none.ckpt")], work)
    check(r.returncode == 1 and "none.ckpt" in r.stderr, f"missing --load: {r.stderr!r}")

    # An output path that cannot be a directory.
    r = run(["--data", data, "--out", os.path.join(out, "history.csv", "x"), "--epochs", "1"],
            work)
    check(r.returncode == 1 and "history.csv" in r.stderr, f"--out under a file: {r.stderr!r}")
    check(snapshot(out) == before, "--out under a file changed the output directory")

    # A write that fails halfway: the file size is limited below the checkpoint's
    # 420 kB.  The trainer ignores SIGXFSZ itself, so write() fails with EFBIG
    # and is reported. Every file of the earlier run stays byte for byte, and
    # no temporary file is left.
    full = os.path.join(tmp, "full")
    r = run(["--data", data, "--out", full, "--epochs", "1", "--hidden", "128,32"], work)
    check(r.returncode == 0, f"a first run: {r.stderr}")
    before = snapshot(full)

    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))

    r = subprocess.run([TRAINER, "--data", data, "--out", full, "--epochs", "2", "--seed", "9"],
                       cwd=work, capture_output=True, text=True, timeout=300,
                       preexec_fn=limit_file_size)
    check(r.returncode == 1 and "model.ckpt" in r.stderr and "File too large" in r.stderr,
          f"size-limited write: status {r.returncode}, {r.stderr!r}")
    check(snapshot(full) == before, "a failed write changed earlier files or left a temporary one")

    # A rename that fails in the middle of the epoch's files (training.state,
    # renamed last, is a directory): the files renamed before it get their
    # earlier versions back, so the set on disk stays the earlier run's.
    os.remove(os.path.join(full, "training.state"))
    os.makedirs(os.path.join(full, "training.state"))
    before = snapshot(full)
    r = run(["--data", data, "--out", full, "--epochs", "2", "--seed", "9"], work)
    check(r.returncode == 1 and "training.state: cannot replace" in r.stderr,
          f"a state that is a directory: status {r.returncode}, {r.stderr!r}")
    check(snapshot(full) == before, "a failed rename left a mix of old and new epoch files")
    os.rmdir(os.path.join(full, "training.state"))

finish("test_cli")
