#!/usr/bin/env python3
"""Hostile inputs from outside (issue 24), each refused in one line with
exit status 1, never a hang or a crash:
- a FIFO wherever a file is read (a picture and --model of predict, --load,
  training.state under --resume, each --data file, export --model,
  trainer-plot's history and images): "not a regular file", at once, with
  no writer on the FIFO (a plain open would wait for one forever)."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish  # noqa: E402

TRAINER, PLOT = (os.path.abspath(p) for p in sys.argv[1:3])


def run(args, timeout=60):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None


def refused(what, args, want):
    r = run(args)
    if r is None:
        check(False, f"{what}: still running after 60 s")
        return
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and len(lines) == 1 and want in lines[0],
          f"{what}: status {r.returncode}, {r.stderr!r}")


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    mnistgen.write_dataset(data, n_train=200, n_test=40, gz_train=False)
    run_dir = os.path.join(tmp, "run")
    r = run([TRAINER, "--data", data, "--out", run_dir, "--epochs", "1", "--no-plots"])
    check(r is not None and r.returncode == 0, f"the first run: {r and r.stderr!r}")
    model = os.path.join(run_dir, "model.ckpt")
    fifo = os.path.join(tmp, "fifo")
    os.mkfifo(fifo)
    not_regular = f"{fifo}: not a regular file"

    refused("predict, a picture", [TRAINER, "predict", "--model", model, fifo], not_regular)
    refused("predict --model", [TRAINER, "predict", "--model", fifo,
                                os.path.join(data, "t10k-images-idx3-ubyte")], not_regular)
    refused("--load", [TRAINER, "--data", data, "--out", os.path.join(tmp, "l"),
                       "--load", fifo, "--epochs", "1"], not_regular)
    refused("export --model", [TRAINER, "export", "--model", fifo, "--onnx",
                               os.path.join(tmp, "m.onnx")], not_regular)
    # A state that is a FIFO.
    resumed = os.path.join(tmp, "resumed")
    shutil.copytree(run_dir, resumed)
    state = os.path.join(resumed, "training.state")
    os.remove(state)
    os.mkfifo(state)
    refused("--resume", [TRAINER, "--resume", resumed, "--epochs", "2"],
            f"{state}: not a regular file")
    # Each of the data files a FIFO in turn.
    for name in sorted(os.listdir(data)):
        bad = os.path.join(tmp, "bad-" + name)
        shutil.copytree(data, bad)
        os.remove(os.path.join(bad, name))
        os.mkfifo(os.path.join(bad, name))
        refused(f"--data with {name} a FIFO",
                [TRAINER, "--data", bad, "--out", os.path.join(tmp, "o"), "--epochs", "1"],
                f"{os.path.join(bad, name)}: not a regular file")
        check(not os.path.exists(os.path.join(tmp, "o")), f"{name}: wrote outputs")
    refused("trainer-plot curves", [PLOT, "curves", fifo, "-o", os.path.join(tmp, "c.png")],
            not_regular)
    refused("trainer-plot digits", [PLOT, "digits", fifo, "-o", os.path.join(tmp, "s.png")],
            not_regular)
    # A directory and a device are not regular files either.
    refused("predict, a directory", [TRAINER, "predict", "--model", model, tmp],
            f"{tmp}: not a regular file")
    refused("--load /dev/zero", [TRAINER, "--data", data, "--out", os.path.join(tmp, "z"),
                                 "--load", "/dev/zero", "--epochs", "1"],
            "/dev/zero: not a regular file")

finish("test_hostile")
