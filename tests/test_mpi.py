#!/usr/bin/env python3
"""Training over several processes (mpirun), bit for bit.

On generated data: the MLP (whose first layer has the rows trainer) and a
conv net with dropout, each also with another optimizer, each trained by one process with --shards 4, then by
mpirun -np 2 and -np 4 (and 2 processes of 2 threads, and a batch that
does not split evenly): the same model.ckpt bytes and history.csv figures.
A run interrupted under mpirun -np 2 and resumed by -np 4 and by a process
alone gives the uninterrupted run's bits.  Rank 0 alone writes (a rank
given another --out leaves it empty); a rank that cannot read its data
ends the job, named in one line, with no file written; --shards that do
not split over the ranks are refused.

Skipped (77) without mpirun or when the trainer was built without MPI.
Open MPI refuses root unless told: the test sets OMPI_ALLOW_RUN_AS_ROOT."""
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])
MPIRUN = shutil.which("mpirun")
if not MPIRUN:
    print("test_mpi: mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev): "
          "skipped")
    sys.exit(77)
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMPI_MCA_rmaps_base_oversubscribe="1",
           # Open MPI's own allocations outlive MPI_Finalize: not the trainer's leaks.
           ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")


def mpirun(n, *args, timeout=600):
    return subprocess.run([MPIRUN, "-np", str(n), TRAINER, *args], capture_output=True,
                          text=True, timeout=timeout, env=ENV)


def alone(*args):
    return subprocess.run([TRAINER, *args], capture_output=True, text=True, timeout=600,
                          env=ENV)


def history(path):
    with open(path) as f:
        return [line.split(",")[:5] for line in f.read().splitlines()]


def same_run(a, b, what):
    with open(os.path.join(a, "model.ckpt"), "rb") as f, \
            open(os.path.join(b, "model.ckpt"), "rb") as g:
        check(f.read() == g.read(), f"{what}: model.ckpt differs")
    check(history(os.path.join(a, "history.csv")) == history(os.path.join(b, "history.csv")),
          f"{what}: history.csv differs")


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    mnistgen.write_dataset(data, 900, 100)
    r = mpirun(2, "--data", data, "--epochs", "0", "--no-plots", "--out",
               os.path.join(tmp, "probe"))
    if "has no MPI" in r.stderr:
        print("test_mpi: the trainer was built without MPI: skipped")
        sys.exit(77)
    check(r.returncode == 0 and "2 processes" in r.stdout,
          f"a first mpirun: {r.returncode} {r.stdout[-500:]} {r.stderr[-500:]}")

    models = {
        "MLP": ["--hidden", "40,20", "--batch-size", "32"],
        "conv net": ["--layers", "conv2d(4,3,same,relu),maxpool2d(2),conv2d(6,3,relu),"
                     "flatten,dropout(0.3),dense(10,softmax)", "--batch-size", "50"],
        # The weights decay (the rows trainer updates every row), momentum
        # and a schedule.
        "MLP with sgd": ["--hidden", "40,20", "--batch-size", "32", "--optimizer", "sgd",
                         "--momentum", "0.9", "--nesterov", "--weight-decay", "0.01",
                         "--lr-schedule", "onecycle", "--label-smoothing", "0.1"],
        "conv net with rmsprop": ["--layers", "conv2d(4,3,relu),flatten,dense(10,softmax)",
                                  "--optimizer", "rmsprop", "--momentum", "0.5",
                                  "--lr-schedule", "cosine", "--warmup-epochs", "1"],
        # Augmentation drawn per sample, batch statistics over every rank.
        "augmented conv net with batchnorm": [
            "--layers", "random_rotation(0.05,constant),random_translation(0.1,0.1),"
            "conv2d(4,3),batchnorm,relu,maxpool2d(2),flatten,dense(10,softmax)",
            "--batch-size", "50", "--optimizer", "adamw"],
    }
    for name, spec in models.items():
        common = ["--data", data, "--epochs", "2", "--no-plots", "--shards", "4", *spec]
        ref = os.path.join(tmp, f"{name}-1")
        r = alone(*common, "--threads", "2", "--out", ref)
        check(r.returncode == 0, f"{name}, one process: {r.stderr}")
        for n, threads in ((2, 1), (4, 1), (2, 2)):
            out = os.path.join(tmp, f"{name}-{n}x{threads}")
            r = mpirun(n, *common, "--threads", str(threads), "--out", out)
            check(r.returncode == 0, f"{name}, {n} processes: {r.stderr[-800:]}")
            if r.returncode == 0:
                same_run(ref, out, f"{name}, {n} processes x {threads} threads")
                head = [line for line in r.stdout.splitlines() if line.startswith("trainer ")]
                check(head and f"{n} processes x {threads} thread" in head[0] and
                      "rank" in head[0], f"the header names the processes: {head}")
        print(f"{name}: the same bits from 1, 2 and 4 processes")
    # A last batch that does not fill the shards (900 * 0.8 = 720 = 7 * 100 + 20).
    common = ["--data", data, "--epochs", "1", "--no-plots", "--shards", "4", "--hidden", "30",
              "--batch-size", "100"]
    r1, r2 = alone(*common, "--out", os.path.join(tmp, "odd-1")), \
        mpirun(2, *common, "--threads", "1", "--out", os.path.join(tmp, "odd-2"))
    check(r1.returncode == 0 and r2.returncode == 0, f"uneven batches: {r2.stderr[-500:]}")
    same_run(os.path.join(tmp, "odd-1"), os.path.join(tmp, "odd-2"), "uneven batches")

    # Interrupted under 2 processes, resumed by 4 and by one.  mpirun passes
    # a Ctrl-C on as SIGTERM a second later, so the run is one that cannot
    # end first; the resumed runs and the uninterrupted one then stop two
    # epochs after the state's (an epoch's bits do not depend on --epochs).
    common = ["--data", data, "--no-plots", "--shards", "4", "--hidden", "64",
              "--batch-size", "16"]
    cut = os.path.join(tmp, "cut")
    p = subprocess.Popen([MPIRUN, "-np", "2", TRAINER, *common, "--epochs", "100000",
                          "--threads", "1", "--out", cut], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=ENV)
    state = os.path.join(cut, "training.state")
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(cut, "history.csv")) and time.time() < deadline \
            and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=300)
    # mpirun relays rank 0's message unless it has stopped reading the
    # processes' output first: the saved state is the promise, the message
    # a courtesy (never twice).
    done = len(history(os.path.join(cut, "history.csv"))) - 1 if os.path.exists(state) else 0
    check(p.returncode != 0 and done > 0 and err.count("interrupted") <= 1,
          f"interrupted under mpirun after {done} epochs: {p.returncode} {err[-800:]}")
    print(f"interrupted after {done} epochs; rank 0's message "
          f"{'relayed' if 'interrupted in epoch' in err else 'lost by mpirun'}")
    if os.path.exists(state):
        final = str(done + 2)
        full = os.path.join(tmp, "full")
        check(alone(*common, "--epochs", final, "--out", full).returncode == 0,
              "the uninterrupted run")
        again = os.path.join(tmp, "cut-alone")
        shutil.copytree(cut, again)
        r = mpirun(4, "--resume", cut, "--epochs", final, "--threads", "1")
        check(r.returncode == 0, f"resumed by 4 processes: {r.stderr[-800:]}")
        same_run(full, cut, "interrupted by 2, resumed by 4")
        r = alone("--resume", again, "--epochs", final)
        check(r.returncode == 0, f"resumed by one process: {r.stderr[-800:]}")
        same_run(full, again, "interrupted by 2, resumed by one")
    else:
        check(False, f"no training.state after the interruption: {err[-800:]}")

    # One writer: rank 1, told another --out, writes nothing there.
    a, b = os.path.join(tmp, "writer-a"), os.path.join(tmp, "writer-b")
    args = ["--data", data, "--epochs", "1", "--shards", "2", "--threads", "1", "--hidden", "8"]
    r = subprocess.run([MPIRUN, "-np", "1", TRAINER, *args, "--out", a, ":", "-np", "1",
                        TRAINER, *args, "--out", b], capture_output=True, text=True,
                       timeout=300, env=ENV)
    check(r.returncode == 0 and os.path.exists(os.path.join(a, "model.ckpt")) and
          os.path.exists(os.path.join(a, "curves.png")) and not os.path.exists(b),
          f"rank 0 alone writes: {r.stderr[-500:]} {os.listdir(tmp)}")

    # A rank that cannot read its data.
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad)
    shutil.copy(os.path.join(data, "t10k-images-idx3-ubyte"), bad)
    out = os.path.join(tmp, "failed")
    r = subprocess.run([MPIRUN, "-np", "1", TRAINER, "--data", data, "--shards", "2",
                        "--out", out, ":", "-np", "1", TRAINER, "--data", bad, "--shards", "2",
                        "--out", out], capture_output=True, text=True, timeout=300, env=ENV)
    lines = [line for line in r.stderr.splitlines() if line.startswith("trainer:")]
    check(r.returncode != 0 and len(lines) == 1 and lines[0].startswith("trainer: rank 1 (") and
          "bad" in lines[0], f"a rank without data: {r.returncode} {r.stderr[-800:]}")
    check(not os.path.exists(out) or os.listdir(out) in ([], [".trainer.lock"]),
          f"no file after a rank failed: {os.listdir(out) if os.path.exists(out) else ''}")

    r = mpirun(2, "--data", data, "--shards", "3", "--out", os.path.join(tmp, "three"))
    lines = [line for line in r.stderr.splitlines() if line.startswith("trainer:")]
    check(r.returncode != 0 and len(lines) == 1 and "--shards 3" in lines[0] and
          "multiple of 2" in lines[0], f"--shards 3 on 2 ranks: {r.stderr[-500:]}")
finish("test_mpi")
