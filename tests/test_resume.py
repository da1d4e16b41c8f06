#!/usr/bin/env python3
"""Interrupt and resume: a real SIGINT (or SIGTERM, or SIGHUP) sent to a running
trainer makes it finish its step, save, and exit 130 (143, 129), its files showing every
epoch it completed; --resume then ends with a model.ckpt and history.csv
identical to an uninterrupted run's."""
import math
import os
import re
import shlex
import signal
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
import trainerfiles  # noqa: E402
from testlib import check, finish, run_outputs as outputs  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    mnistgen.write_dataset(data, n_train=1200, n_test=100)
    # 60 short epochs: the signal must come before the run ends, and the epoch
    # files, written at most once a second, must have epochs to catch up.
    def run_flags(epochs):
        return ["--data", data, "--epochs", str(epochs), "--batch-size", "8", "--shards",
                "2", "--seed", "4", "--no-plots"]
    flags = run_flags(60)
    whole = os.path.join(tmp, "whole")
    r = subprocess.run([TRAINER, "--out", whole] + flags, capture_output=True, text=True,
                       timeout=600)
    check(r.returncode == 0, f"the uninterrupted run failed: {r.stderr}")
    reference = outputs(whole)

    for sig, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)):
        # A name the shell must quote: the message's command must still run.
        cut = os.path.join(tmp, f"cut {sig}'s run")
        p = subprocess.Popen([TRAINER, "--out", cut] + flags, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        # Once the first epoch's files exist the run is well under way.
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(cut, "history.csv")) and time.time() < deadline:
            time.sleep(0.01)
        p.send_signal(sig)
        out, err = p.communicate(timeout=120)
        check(p.returncode == status, f"signal {sig}: exit {p.returncode}, want {status}")
        said = re.search(r"^continue with: (.*)$", err, re.M)
        command = shlex.split(said.group(1)) if said else None
        check(command == [TRAINER, "--resume", cut], f"signal {sig}: message {err!r}")
        # The interrupted run's history.csv and model.ckpt stand after the last
        # epoch it completed, as those of a run of that many epochs do.
        m = re.search(r"interrupted in epoch (\d+) ", err)
        done = int(m.group(1)) - 1 if m else 0
        check(done >= 1, f"signal {sig}: no completed epoch before the signal: {err!r}")
        short = os.path.join(tmp, f"short{sig}")
        r = subprocess.run([TRAINER, "--out", short] + run_flags(done),
                           capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, f"the {done}-epoch run failed: {r.stderr}")
        if done >= 1:
            check(outputs(cut) == outputs(short),
                  f"signal {sig}: after {done} epochs the files differ from a {done}-epoch "
                  f"run's")
        r = subprocess.run((command or [TRAINER, "--resume", cut]) + ["--no-plots"],
                           capture_output=True, text=True, timeout=600)
        check(r.returncode == 0 and "Resuming" in r.stdout, f"resume failed: {r.stderr}")
        check(outputs(cut) == reference,
              f"signal {sig}: the resumed run differs from the uninterrupted one")
        check(not [n for n in os.listdir(cut) if ".tmp-" in n], "temporary files left behind")

    # With the callbacks on (early stopping that restores the best weights,
    # the best model saved, the rate lowered on a plateau), an interrupted and
    # resumed run ends as the uninterrupted one: model.ckpt, model.best.ckpt,
    # every history column but the seconds (the learning rate included).
    def cb_outputs(d):
        with open(os.path.join(d, "model.ckpt"), "rb") as f:
            model = f.read()
        with open(os.path.join(d, "model.best.ckpt"), "rb") as f:
            best = f.read()
        with open(os.path.join(d, "history.csv")) as f:
            cols = [line.strip().split(",")[:5] + line.strip().split(",")[6:] for line in f]
        return model, best, cols
    cb_flags = flags + ["--early-stopping", "6", "--min-delta", "0.002",
                        "--reduce-lr-on-plateau", "0.5", "--lr-patience", "2", "--save-best"]
    cb_whole = os.path.join(tmp, "cb_whole")
    r = subprocess.run([TRAINER, "--out", cb_whole] + cb_flags, capture_output=True, text=True,
                       timeout=600)
    stopped = re.search(r"Stopped after epoch (\d+)", r.stdout)
    restored = re.search(r"Restored the weights of epoch (\d+)", r.stdout)
    check(r.returncode == 0 and stopped and restored and "reducing learning rate" in r.stdout,
          f"the callbacks' run: {r.stdout[-600:]} {r.stderr}")
    cb_reference = cb_outputs(cb_whole)
    check(cb_reference[2][0][-1] == "learning_rate", "history.csv has no learning_rate column")
    cb_cut = os.path.join(tmp, "cb_cut")
    p = subprocess.Popen([TRAINER, "--out", cb_cut] + cb_flags, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    # Late enough that the rules carry state (waits, a lowered rate, kept
    # weights of an earlier epoch) across the interruption.
    stop_at = int(stopped.group(1)) - 1 if stopped else 2
    for line in p.stdout:
        if line.startswith(f"Epoch {stop_at}/"):
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=120)
    check(p.returncode == 130, f"the callbacks' run was not interrupted: {p.returncode}")
    r = subprocess.run([TRAINER, "--resume", cb_cut, "--no-plots"], capture_output=True,
                       text=True, timeout=600)
    check(r.returncode == 0 and restored and
          f"Restored the weights of epoch {restored.group(1) if restored else '?'}" in r.stdout,
          f"the callbacks' resume: {r.stdout[-600:]} {r.stderr}")
    check(cb_outputs(cb_cut) == cb_reference,
          "with callbacks, the resumed run differs from the uninterrupted one")
    r = subprocess.run([TRAINER, "--resume", cb_cut, "--early-stopping", "2"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "--resume continues a run with its own settings" in r.stderr,
          f"--resume with a callback flag: {r.returncode} {r.stderr!r}")

    # Another optimizer, a schedule and label smoothing: the optimizer's
    # slots, its settings and the step the schedule is at travel in
    # training.state, so an interrupted and resumed run ends as the whole one;
    # history.csv's rate is the schedule's at each epoch's last step.
    opt_flags = run_flags(12) + ["--optimizer", "sgd", "--momentum", "0.9", "--nesterov",
                                 "--weight-decay", "0.001", "--lr", "0.05", "--lr-schedule",
                                 "onecycle", "--label-smoothing", "0.1"]
    opt_whole = os.path.join(tmp, "opt_whole")
    r = subprocess.run([TRAINER, "--out", opt_whole] + opt_flags, capture_output=True,
                       text=True, timeout=600)
    check(r.returncode == 0 and "SGD lr 0.05 momentum 0.9 (Nesterov) weight decay 0.001, "
          "onecycle schedule, label smoothing 0.1" in r.stdout,
          f"the sgd run: {r.stdout[:300]} {r.stderr}")
    with open(os.path.join(opt_whole, "history.csv")) as f:
        rows = [line.strip().split(",") for line in f][1:]
    steps = 960 // 8  # 1200 samples less the validation fifth, batches of 8
    total, up = 12 * steps, 0.3 * 12 * steps - 1

    def onecycle(i):
        lo, hi = 0.05 / 25, 0.05
        if i <= up:
            return hi + (lo - hi) / 2 * (math.cos(math.pi * i / up) + 1)
        return lo / 1e4 + (hi - lo / 1e4) / 2 * (math.cos(math.pi * (i - up) /
                                                         (total - 1 - up)) + 1)
    check(len(rows) == 12 and all(abs(float(row[6]) - onecycle((e + 1) * steps - 1)) <=
                                  1e-6 * onecycle((e + 1) * steps - 1)
                                  for e, row in enumerate(rows)),
          f"history's rates are not the schedule's: {[row[6] for row in rows]}")

    def plain_outputs(d):
        with open(os.path.join(d, "model.ckpt"), "rb") as f:
            model = f.read()
        with open(os.path.join(d, "history.csv")) as f:
            cols = [line.strip().split(",")[:5] + line.strip().split(",")[6:] for line in f]
        return model, cols
    opt_reference = plain_outputs(opt_whole)
    opt_cut = os.path.join(tmp, "opt_cut")
    p = subprocess.Popen([TRAINER, "--out", opt_cut] + opt_flags, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("Epoch 5/"):
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=120)
    check(p.returncode == 130, f"the sgd run was not interrupted: {p.returncode}")
    r = subprocess.run([TRAINER, "--resume", opt_cut, "--epochs", "13"], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 1 and "follows a onecycle schedule over 12 epochs" in r.stderr,
          f"--epochs changed under a schedule: {r.returncode} {r.stderr!r}")
    r = subprocess.run([TRAINER, "--resume", opt_cut, "--optimizer", "adam"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 2 and "--resume continues a run with its own settings" in r.stderr,
          f"--resume with --optimizer: {r.returncode} {r.stderr!r}")
    r = subprocess.run([TRAINER, "--resume", opt_cut, "--no-plots"], capture_output=True,
                       text=True, timeout=600)
    check(r.returncode == 0 and "SGD lr 0.05" in r.stdout, f"the sgd resume: {r.stderr}")
    check(plain_outputs(opt_cut) == opt_reference,
          "with sgd and a schedule, the resumed run differs from the uninterrupted one")

    # Batch normalization (its moving statistics travel as parameters) and
    # augmentation (drawn from the epoch and step) resume to the same bits.
    bn_flags = run_flags(8) + ["--layers", "random_rotation(0.05,constant),"
                               "random_translation(0.1,0.1),conv2d(4,3),batchnorm,relu,"
                               "maxpool2d(2),flatten,dense(10,softmax)"]
    bn_whole = os.path.join(tmp, "bn_whole")
    r = subprocess.run([TRAINER, "--out", bn_whole] + bn_flags, capture_output=True, text=True,
                       timeout=600)
    check(r.returncode == 0, f"the batchnorm run: {r.stderr}")
    bn_reference = plain_outputs(bn_whole)
    bn_cut = os.path.join(tmp, "bn_cut")
    p = subprocess.Popen([TRAINER, "--out", bn_cut] + bn_flags, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    for line in p.stdout:
        if line.startswith("Epoch 4/"):
            p.send_signal(signal.SIGINT)
            break
    out, err = p.communicate(timeout=120)
    check(p.returncode == 130, f"the batchnorm run was not interrupted: {p.returncode}")
    r = subprocess.run([TRAINER, "--resume", bn_cut, "--no-plots"], capture_output=True,
                       text=True, timeout=600)
    check(r.returncode == 0 and plain_outputs(bn_cut) == bn_reference,
          f"with batchnorm and augmentation, the resumed run differs: {r.stderr}")

    # Two signals in a row: out at once; what is on disk is whole and resumable.
    twice = os.path.join(tmp, "twice")
    p = subprocess.Popen([TRAINER, "--out", twice] + flags, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not os.path.exists(os.path.join(twice, "training.state")) and time.time() < deadline:
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=120)
    check(p.returncode == 130, f"two signals: exit {p.returncode}")
    r = subprocess.run([TRAINER, "--resume", twice, "--no-plots"], capture_output=True,
                       text=True, timeout=600)
    check(r.returncode == 0 and outputs(twice) == reference,
          f"after two signals the saved state did not resume to the same run: {r.stderr}")

    # Other data of the same size and shape: the fingerprint tells them apart.
    other = os.path.join(tmp, "other")
    mnistgen.write_dataset(other, n_train=1200, n_test=100)
    mnistgen.write_pair(other, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", 1200,
                        seed=3, gz=True)
    before = outputs(twice)
    r = subprocess.run([TRAINER, "--resume", twice, "--data", other, "--epochs", "61",
                        "--no-plots"], capture_output=True, text=True, timeout=600)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and len(lines) == 1 and "not the data" in r.stderr and
          other in r.stderr and data in r.stderr,
          f"resume on other data: status {r.returncode}, {r.stderr!r}")
    check(outputs(twice) == before, "resume on other data changed the run's files")
    # The same data in another directory (plain files, not gzip) is accepted.
    same = os.path.join(tmp, "same")
    mnistgen.write_dataset(same, n_train=1200, n_test=100, gz_train=False)
    r = subprocess.run([TRAINER, "--resume", twice, "--data", same, "--epochs", "61",
                        "--no-plots"], capture_output=True, text=True, timeout=600)
    check(r.returncode == 0, f"resume on the same data elsewhere: {r.stderr!r}")

    # A version-1 state, written by d8a617e (tests/v1/: 2 epochs of a 784-8-10
    # model on the data below, --batch-size 16 --shards 2 --seed 3), resumes
    # to d8a617e's model.ckpt after 3 epochs: the same bytes from the build
    # that wrote them (GCC, -march=native), the same values to float rounding
    # from others (-Dcpu=portable, clang round differently), which a wrong
    # moment, step count or position would be far from.
    v1 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "v1")
    v1data = os.path.join(tmp, "v1data")
    mnistgen.write_dataset(v1data, n_train=400, n_test=50)
    v1run = os.path.join(tmp, "v1run")
    os.makedirs(v1run)
    with open(os.path.join(v1, "training.state"), "rb") as f:
        state = f.read()
    check(state[8] == 1, "tests/v1/training.state is not of version 1")
    with open(os.path.join(v1run, "training.state"), "wb") as f:
        f.write(state)
    r = subprocess.run([TRAINER, "--resume", v1run, "--data", v1data, "--epochs", "3",
                        "--no-plots"], capture_output=True, text=True, timeout=600)
    check(r.returncode == 0 and "Resuming" in r.stdout, f"resume of a version-1 state: {r.stderr}")

    def ckpt_floats(path):
        """model.ckpt's layers and parameters (tests/trainerfiles.py, any version)."""
        c = trainerfiles.read_ckpt(path)
        return c["layers"], [x for _, values in c["tensors"] for x in values]

    got_path = os.path.join(v1run, "model.ckpt")
    if os.path.exists(got_path):
        want_sizes, want = ckpt_floats(os.path.join(v1, "model-3-epochs.ckpt"))
        got_sizes, got = ckpt_floats(got_path)
        worst = max(abs(a - b) for a, b in zip(got, want)) if got_sizes == want_sizes else None
        print(f"version-1 resume: largest parameter difference to d8a617e's {worst}")
        check(worst is not None and worst < 1e-4,
              f"the resumed version-1 run is far from d8a617e's 3-epoch model ({worst})")
    else:
        check(False, "the resumed version-1 run wrote no model.ckpt")
    r = subprocess.run([TRAINER, "--load", os.path.join(v1, "model-3-epochs.ckpt"), "--data",
                        v1data, "--epochs", "0"], capture_output=True, text=True, timeout=600)
    check(r.returncode == 0 and "test accuracy: 0.7600" in r.stdout,
          f"the version-1 model.ckpt: {r.stdout[-300:]!r} {r.stderr!r}")

    # What --resume refuses.
    r = subprocess.run([TRAINER, "--resume", whole, "--lr", "0.1"], capture_output=True,
                       text=True)
    check(r.returncode == 2 and "--resume" in r.stderr, f"--resume with --lr: {r.stderr!r}")
    r = subprocess.run([TRAINER, "--resume", data], capture_output=True, text=True)
    check(r.returncode == 1 and "training.state" in r.stderr, f"no state: {r.stderr!r}")
    with open(os.path.join(whole, "training.state"), "r+b") as f:
        f.seek(100)
        b = f.read(1)
        f.seek(100)
        f.write(bytes([b[0] ^ 1]))
    r = subprocess.run([TRAINER, "--resume", whole], capture_output=True, text=True)
    check(r.returncode == 1 and "checksum" in r.stderr, f"corrupt state: {r.stderr!r}")

    # A state whose model has 5 outputs, written here after the format in
    # include/state.h: the labels go up to 9, so it must be refused.
    sizes, n_params = [784, 5], 784 * 5 + 5
    data_dir = data.encode()
    body = (b"TRNRSTAT" + struct.pack("<IIII", 1, 0x01020304, 4, 1) + struct.pack("<2I", *sizes) +
            struct.pack("<QIIIdd", 4, 8, 2, 3, 0.001, 0.2) + struct.pack("<II", 960, 240) +
            struct.pack("<I", len(data_dir)) + data_dir +
            struct.pack("<IQdQQQ", 1, 0, 0.0, 0, 0, 0) + struct.pack("<I", 0) +
            struct.pack("<Q", n_params) + bytes(3 * 4 * n_params))
    five = os.path.join(tmp, "five")
    os.makedirs(five)
    with open(os.path.join(five, "training.state"), "wb") as f:
        f.write(body + struct.pack("<I", zlib.crc32(body)))
    r = subprocess.run([TRAINER, "--resume", five], capture_output=True, text=True)
    check(r.returncode == 1 and "5 classes" in r.stderr, f"a 5-class state: {r.stderr!r}")

finish("test_resume")
