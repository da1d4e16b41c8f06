#!/usr/bin/env python3
"""Hostile inputs from outside (issue 24), each refused in one line with
exit status 1, never a hang or a crash:
- a FIFO wherever a file is read (a picture and --model of predict, --load,
  training.state under --resume, each --data file, export --model,
  trainer-plot's history and images): "not a regular file", at once, with
  no writer on the FIFO (a plain open would wait for one forever);
- a file-size limit (ulimit -f 100) under --resume: the write fails with
  EFBIG ("File too large"), the earlier files stay as they were, and no
  temporary file is left (SIGXFSZ used to kill the process);
- a run started with SIGHUP ignored (nohup) goes on when SIGHUP comes; one
  started without saves its state and stops (status 129);
- a training.state with a negative second moment of the optimizer (a good checksum) is
  refused on --resume, naming the moment, where it used to resume and write
  a model.ckpt with a NaN weight;
- a model.ckpt of version 1 (a stack of dense layers told by its sizes, as
  0.1's first releases wrote it) predicts as the same parameters in a file
  of the current version: MNIST's own IDX file and a PNG picture, the same
  classes and probabilities (it was read as a 1x1x784 input, which refused
  the IDX file and prepared the picture wrongly);
- a small model.ckpt (688 kB) whose layers' outputs need 34 GB of working
  memory for predict's blocks of 64: refused before anything is allocated,
  naming the need and the bound (half of the machine's memory);
- a training.state that names no data directory: "give it with --data DIR",
  not ": data directory not found";
- export: an output that is the model read, or another output, is refused
  (status 2) and the model is left as it was; an empty path is refused; a
  drawing page that fails part-way leaves the earlier page whole."""
import os
import resource
import shutil
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

    # ulimit -f 100 (102,400 bytes, below the checkpoint's 420 kB), SIGXFSZ
    # left at its default, which kills.
    limited = os.path.join(tmp, "limited")
    shutil.copytree(run_dir, limited)
    os.remove(os.path.join(limited, ".trainer.lock"))
    before = {n: open(os.path.join(limited, n), "rb").read() for n in os.listdir(limited)}

    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
        resource.setrlimit(resource.RLIMIT_FSIZE, (102_400, 102_400))

    r = subprocess.run([TRAINER, "--resume", limited, "--epochs", "2", "--no-plots"], capture_output=True,
                       text=True, timeout=300, preexec_fn=limit_file_size)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 1 and len(lines) == 1 and "File too large" in lines[0],
          f"--resume under ulimit -f 100: status {r.returncode}, {r.stderr!r}")
    after = {n: open(os.path.join(limited, n), "rb").read() for n in os.listdir(limited)
             if n != ".trainer.lock"}
    check(after == before, "ulimit -f 100: the earlier files changed, or temporary files "
          f"were left: {sorted(set(after) ^ set(before))}")

    # nohup: SIGHUP ignored on entry stays ignored.
    def ignore_hup():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)

    for ignored in (True, False):
        where = os.path.join(tmp, f"hup-{ignored}")
        p = subprocess.Popen([TRAINER, "--data", data, "--out", where, "--epochs", "100000",
                              "--no-plots"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, preexec_fn=ignore_hup if ignored else None)
        deadline = time.time() + 120
        while not os.path.exists(os.path.join(where, "history.csv")) and \
                time.time() < deadline:
            time.sleep(0.01)
        p.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        alive = p.poll() is None
        check(alive == ignored, f"SIGHUP {'ignored' if ignored else 'default'} on entry: "
              f"{'still running' if alive else f'ended with {p.returncode}'}")
        if alive:
            p.send_signal(signal.SIGTERM)
        p.communicate(timeout=120)
        check(p.returncode == (143 if ignored else 129),
              f"SIGHUP {'ignored' if ignored else 'default'}: status {p.returncode}")

    # A negative second moment in a state with a good checksum.
    forged = os.path.join(tmp, "forged")
    shutil.copytree(run_dir, forged)
    os.remove(os.path.join(forged, ".trainer.lock"))
    path = os.path.join(forged, "training.state")
    state = trainerfiles.read_state(path)
    p = sum(len(t[1]) for t in state["params"])
    arrays = 4 if "best_weights" in state else 3
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    v0 = len(raw) - 4 - 4 * p * arrays + 2 * 4 * p  # params, m, then v
    raw[v0 + 4 * 7:v0 + 4 * 8] = struct.pack("<f", -0.25)
    raw[-4:] = struct.pack("<I", zlib.crc32(bytes(raw[:-4])))
    with open(path, "wb") as f:
        f.write(raw)
    before = {n: open(os.path.join(forged, n), "rb").read() for n in os.listdir(forged)}
    r = run([TRAINER, "--resume", forged, "--epochs", "2", "--no-plots"])
    check(r.returncode == 1 and "the optimizer's second slot of layer 1 (dense_1), weight [0][7], is "
          "negative (-0.25)" in r.stderr, f"a negative second moment: {r.stderr!r}")
    after = {n: open(os.path.join(forged, n), "rb").read() for n in os.listdir(forged)
             if n != ".trainer.lock"}
    check(after == before, "a refused state changed the run's files")

    # The first run's model written as a version-1 file: u32 L, the L + 1
    # sizes, u64 P, the floats (include/ckpt.h).
    ckpt = trainerfiles.read_ckpt(model)
    sizes = [784] + [hp["units"] for kind, hp in ckpt["layers"] if kind == "dense"]
    floats = [v for _, values in ckpt["tensors"] for v in values]
    body = b"TRNRCKPT" + struct.pack("<III", 1, 0x01020304, 4)
    body += struct.pack(f"<I{len(sizes)}I", len(sizes) - 1, *sizes)
    body += struct.pack(f"<Q{len(floats)}f", len(floats), *floats)
    old = os.path.join(tmp, "old.ckpt")
    with open(old, "wb") as f:
        f.write(body + struct.pack("<I", zlib.crc32(body)))
    pictures = [os.path.join(data, "t10k-images-idx3-ubyte")]
    try:
        import numpy as np
        import pngwrite
        digit = np.full((40, 30), 235, np.uint8)  # dark ink on a light page
        digit[6:34, 13:18] = 20
        digit[6:11, 8:18] = 20
        pictures.append(os.path.join(tmp, "one.png"))
        with open(pictures[-1], "wb") as f:
            f.write(pngwrite.encode(digit, 0))
    except ImportError:
        print("numpy is not installed: the version-1 model is tried on the IDX file only")
    for picture in pictures:
        said = [run([TRAINER, "predict", "--json", "--model", m, picture])
                for m in (model, old)]
        check(said[1].returncode == 0 and said[1].stdout == said[0].stdout,
              f"a version-1 model on {os.path.basename(picture)}: status "
              f"{said[1].returncode}, {said[1].stderr!r}, "
              f"{said[1].stdout[:200]!r} vs {said[0].stdout[:200]!r}")

    # A 128x128 input, conv2d(4096,1): 268 MB of outputs a sample.
    body = b"TRNRCKPT" + struct.pack("<III", 3, 0x01020304, 4)
    body += struct.pack("<5I", 128, 128, 1, 10, 5)
    records = [(3, 4096, 1, 0, 0), (4, 64), (5,), (1, 10, 0), (2,)]
    tensors = [[4096, 4096], [], [], [16384 * 10, 10], []]
    for words in records:
        body += struct.pack("<8I", *words, *[0] * (8 - len(words)))
    for counts in tensors:
        body += struct.pack("<I", len(counts))
        body += b"".join(struct.pack("<QI", n, 1) for n in counts)
    total = sum(map(sum, tensors))
    body += struct.pack("<Q", total) + bytes(4 * total)
    huge = os.path.join(tmp, "huge.ckpt")
    with open(huge, "wb") as f:
        f.write(body + struct.pack("<I", zlib.crc32(body)))
    if os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2 < 34.4e9:
        refused("a model that needs 34 GB", [TRAINER, "predict", "--model", huge,
                                             os.path.join(data, "t10k-images-idx3-ubyte")],
                "the model needs 34.4 GB of working memory for 64 samples at a time, more "
                "than")
    else:
        print("this machine allows 34 GB of working memory: the bound was not tried")

    # A state whose data directory is empty (u32 0 in place of its length
    # and name), with a good checksum.
    nodir = os.path.join(tmp, "nodir")
    shutil.copytree(run_dir, nodir)
    os.remove(os.path.join(nodir, ".trainer.lock"))
    path = os.path.join(nodir, "training.state")
    name = trainerfiles.read_state(path)["data_dir"].encode()
    with open(path, "rb") as f:
        raw = bytearray(f.read())
    at = raw.find(struct.pack("<I", len(name)) + name)
    raw[at:at + 4 + len(name)] = struct.pack("<I", 0)
    raw[-4:] = struct.pack("<I", zlib.crc32(bytes(raw[:-4])))
    with open(path, "wb") as f:
        f.write(raw)
    refused("a state with no data directory", [TRAINER, "--resume", nodir, "--epochs", "2"],
            f"{path}: the state names no data directory: give it with --data DIR")

    # Export's outputs.
    with open(model, "rb") as f:
        model_bytes = f.read()
    for args, want in (
            (["--onnx", model], "is also the model read"),
            (["--safetensors", os.path.join(run_dir, "..", "run", "model.ckpt")],
             "is also the model read"),
            (["--onnx", os.path.join(tmp, "x.bin"), "--safetensors",
              os.path.join(tmp, ".", "x.bin")], "x.bin is also"),
            (["--onnx", ""], "--onnx needs a path"),
            (["--onnx", os.path.join(tmp, "page", "model.onnx"), "--web",
              os.path.join(tmp, "page")], "is also the page's model.onnx")):
        r = run([TRAINER, "export", "--model", model, *args])
        lines = r.stderr.strip().splitlines()
        check(r.returncode == 2 and len(lines) == 1 and want in lines[0],
              f"export {args}: status {r.returncode}, {r.stderr!r}")
    with open(model, "rb") as f:
        check(f.read() == model_bytes, "export changed the model it read")
    check(not os.path.exists(os.path.join(tmp, "x.bin")), "export wrote x.bin")
    # The page: ONNX Runtime Web's files stood in for by small ones.
    ort = os.path.join(tmp, "ort")
    os.makedirs(ort)
    for name in ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm"):
        with open(os.path.join(ort, name), "w") as f:
            f.write("the first version\n")
    page = os.path.join(tmp, "page")
    r = run([TRAINER, "export", "--model", model, "--web", page, "--onnxruntime-web", ort])
    check(r.returncode == 0, f"export --web: {r.stderr!r}")
    for name in os.listdir(ort):
        with open(os.path.join(ort, name), "w") as f:
            f.write("the second version\n")
    os.remove(os.path.join(page, "page.js"))
    os.makedirs(os.path.join(page, "page.js"))  # its replacement cannot be renamed there
    before = {n: open(os.path.join(page, n), "rb").read() for n in os.listdir(page)
              if n != "page.js"}
    r = run([TRAINER, "export", "--model", model, "--web", page, "--onnxruntime-web", ort])
    after = {n: open(os.path.join(page, n), "rb").read() for n in os.listdir(page)
             if n != "page.js"}
    check(r.returncode == 1 and "page.js" in r.stderr, f"a page that fails: {r.stderr!r}")
    check(after == before, "a page that failed part-way left a mix of new and old files: "
          f"{sorted(n for n in after if after[n] != before.get(n))}")

finish("test_hostile")
