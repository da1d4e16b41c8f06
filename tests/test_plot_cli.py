#!/usr/bin/env python3
"""trainer-plot: each command writes a PNG that decodes (checked with libpng
through pngcheck) and shows what it should; each bad input is refused with a
message and status 1 or 2, and leaves no PNG behind."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish  # noqa: E402

PLOT, PNGCHECK, TRAINER = (os.path.abspath(p) for p in sys.argv[1:4])
TRAIN, VAL = "1f77b4", "ff7f0e"


def plot(*args):
    r = subprocess.run([PLOT] + list(args), capture_output=True, text=True, timeout=300)
    print("$ trainer-plot", " ".join(args), "->", r.returncode, r.stderr.strip())
    return r


def pngcheck(path, *colors):
    """(width, height, non-white pixels, {colour: (left, right)}) or None."""
    r = subprocess.run([PNGCHECK, path] + list(colors), capture_output=True, text=True)
    if r.returncode != 0:
        return None
    lines = r.stdout.split("\n")
    w, h, ink = (int(x) for x in lines[0].split())
    counts = {}
    for line in lines[1:]:
        if line:
            c, left, right = line.split()
            counts[c] = (int(left), int(right))
    return w, h, ink, counts


def expect_refused(status, out, *args, word=""):
    r = plot(*args, "-o", out)
    check(r.returncode == status, f"{args}: status {r.returncode}, want {status}")
    check(word in r.stderr and r.stderr.count("\n") == 1,
          f"{args}: want one line naming {word!r}, got {r.stderr!r}")
    check(not os.path.exists(out), f"{args}: left {out} behind")
    check(not [n for n in os.listdir(os.path.dirname(out)) if ".tmp-" in n],
          f"{args}: left a temporary file")


with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    mnistgen.write_dataset(data, n_train=600, n_test=200)
    out = os.path.join(tmp, "run")
    r = subprocess.run([TRAINER, "--data", data, "--out", out, "--epochs", "3", "--threads", "2"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"training failed: {r.stderr}")

    # Text: DejaVu Sans where it is installed, else the bitmap font, said once.
    history = os.path.join(out, "history.csv")
    nofont = dict(os.environ, TRAINER_FONT=os.path.join(tmp, "no-such-font.ttf"))
    r = subprocess.run([PLOT, "curves", history, "-o", os.path.join(tmp, "bitmap.png")],
                       capture_output=True, text=True, env=nofont, timeout=300)
    check(r.returncode == 0 and r.stderr.count("bitmap font") == 1 and
          "no-such-font.ttf" in r.stderr and r.stderr.count("\n") == 1,
          f"trainer-plot without its font: {r.returncode} {r.stderr!r}")
    check(pngcheck(os.path.join(tmp, "bitmap.png")) is not None, "the bitmap-font picture")
    r = subprocess.run([TRAINER, "--data", data, "--out", os.path.join(tmp, "nofont"),
                        "--epochs", "1"], capture_output=True, text=True, env=nofont,
                       timeout=300)
    check(r.returncode == 0 and r.stderr.count("bitmap font") == 1,
          f"the trainer without its font: {r.returncode} {r.stderr!r}")
    if os.path.exists("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        r = plot("curves", history, "-o", os.path.join(tmp, "vector.png"))
        check(r.returncode == 0 and "bitmap" not in r.stderr,
              f"with DejaVu Sans installed: {r.stderr!r}")

    # The trainer's own pictures.
    for name in ("samples.png", "curves.png", "predictions.png"):
        info = pngcheck(os.path.join(out, name), TRAIN, VAL)
        check(info is not None and info[2] > 1000, f"{name} from the trainer: {info}")
    info = pngcheck(os.path.join(out, "curves.png"), TRAIN, VAL)
    if info:
        check(info[:2] == (1200, 520), f"curves.png size {info[:2]}")
        for colour in (TRAIN, VAL):
            check(min(info[3][colour]) > 50, f"curves.png: {colour} in both panels: {info[3]}")

    pics = os.path.join(tmp, "pics")
    os.makedirs(pics)

    def same_lines(png, history, what):
        """png shows the curves of history (as trainer-plot draws them)."""
        ref = os.path.join(pics, "reference.png")
        check(plot("curves", history, "-o", ref).returncode == 0, f"{what}: curves")
        a, b = pngcheck(png, TRAIN, VAL), pngcheck(ref, TRAIN, VAL)
        check(a is not None and b is not None, f"{what}: {a} {b}")
        for colour in (TRAIN, VAL):
            for side in (0, 1):
                if a and b:
                    x, y = a[3][colour][side], b[3][colour][side]
                    check(abs(x - y) <= 0.05 * y, f"{what} {colour}: {x} pixels, from "
                          f"history.csv {y}")

    # The trainer redraws curves.png at most once a second, but always after
    # the last epoch: its lines are those of the whole history, up to the
    # rounding of history.csv's numbers (a missing epoch would take a third).
    same_lines(os.path.join(out, "curves.png"), os.path.join(out, "history.csv"), "curves.png")

    # Interrupted between two redraws, it catches up with history.csv.  The
    # small rate keeps the loss far above history.csv's last decimal: hundreds
    # of epochs run before the first redraw on a fast machine, and at the
    # default rate the loss falls below 1e-6, which rounds to 0 there.
    cut = os.path.join(tmp, "cut")
    p = subprocess.Popen([TRAINER, "--data", data, "--out", cut, "--epochs", "10000",
                          "--lr", "0.00001"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    history = os.path.join(cut, "history.csv")
    deadline = time.time() + 120
    while time.time() < deadline:
        if os.path.exists(history):
            with open(history) as f:
                if len(f.readlines()) > 4:
                    break
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=120)
    check(p.returncode == 130, f"interrupted run: exit {p.returncode}")
    same_lines(os.path.join(cut, "curves.png"), history, "curves.png when interrupted")
    p = os.path.join(pics, "curves.png")
    check(plot("curves", os.path.join(out, "history.csv"), "-o", p).returncode == 0, "curves")
    info = pngcheck(p, TRAIN, VAL)
    check(info is not None and info[:2] == (1200, 520), f"curves: {info}")

    images = os.path.join(data, "t10k-images-idx3-ubyte")
    labels = os.path.join(data, "t10k-labels-idx1-ubyte")
    p = os.path.join(pics, "samples.png")
    check(plot("digits", images, labels, "-o", p, "--count", "25", "--start", "5").returncode == 0,
          "digits")
    info = pngcheck(p)
    check(info is not None and info[0] == 1200 and info[2] > 1000, f"digits: {info}")
    p = os.path.join(pics, "nolabels.png")
    check(plot("digits", images, "-o", p, "--count", "3").returncode == 0, "digits without labels")
    check(pngcheck(p) is not None, "digits without labels decodes")

    model = os.path.join(out, "model.ckpt")
    # A barely trained model, whose mistakes --errors must count and list.
    weak = os.path.join(tmp, "weak")
    r = subprocess.run([TRAINER, "--data", data, "--epochs", "1", "--lr", "0.00001",
                        "--no-plots", "--out", weak], capture_output=True, text=True,
                       timeout=300)
    check(r.returncode == 0, f"the weak model: {r.stderr}")
    runs = (("predictions", [], model), ("predictions", ["--errors"], model),
            ("confusion", [], model),
            ("predictions", ["--errors"], os.path.join(weak, "model.ckpt")))
    for k, (cmd, extra, model) in enumerate(runs):
        p = os.path.join(pics, f"{cmd}{k}.png")
        r = plot(cmd, "--model", model, "--data", data, "-o", p, *extra)
        # An easy dataset may have no mistakes at all; that is said, not drawn.
        # The weak model must have some.
        if k == 1 and r.returncode == 1 and "no mistakes" in r.stderr:
            continue
        check(r.returncode == 0, f"{cmd} {extra}: {r.stderr}")
        info = pngcheck(p)
        check(info is not None and info[2] > 1000, f"{cmd} {extra}: {info}")
        if extra:
            # The mistakes' count and indices, against the trainer's own test
            # accuracy (200 images: 4 decimals tell the count exactly).
            t = subprocess.run([TRAINER, "--data", data, "--load", model, "--epochs", "0",
                                "--no-plots", "--out", os.path.join(tmp, "eval")],
                               capture_output=True, text=True, timeout=300)
            acc = re.search(r"test accuracy: ([0-9.]+) \((\d+) images\)", t.stdout)
            said = re.search(r"^(\d+) of (\d+) test images wrong; shown:((?: #\d+)*)$",
                             r.stdout, re.M)
            check(acc is not None and said is not None, f"--errors: {r.stdout} {t.stdout}")
            if acc and said:
                n_test = int(acc.group(2))
                wrong = round((1 - float(acc.group(1))) * n_test)
                shown = [int(x) for x in said.group(3).split(" #")[1:]]
                check(int(said.group(1)) == wrong and int(said.group(2)) == n_test and
                      len(shown) == min(wrong, 40) and shown == sorted(set(shown)) and
                      all(0 <= i < n_test for i in shown),
                      f"--errors says {said.group(0)!r}; the test accuracy is {acc.group(0)}")

    # Bad inputs.
    bad = os.path.join(tmp, "bad")
    os.makedirs(bad)
    header = "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n"
    cases = {
        "short.csv": header + "1,0.2,0.9,0.1\n",
        "text.csv": header + "1,0.2,high,0.1,0.9,1\n",
        "empty-rows.csv": header,
        "no-header.csv": "1,0.2,0.9,0.1,0.9,1\n",
        "empty.csv": "",
    }
    for name, text in cases.items():
        with open(os.path.join(bad, name), "w") as f:
            f.write(text)
        expect_refused(1, os.path.join(bad, name + ".png"), "curves", os.path.join(bad, name),
                       word=name)
    expect_refused(1, os.path.join(bad, "missing.png"), "curves", os.path.join(bad, "none.csv"),
                   word="none.csv")
    expect_refused(1, os.path.join(bad, "kind.png"), "digits", labels, word="image file")
    expect_refused(1, os.path.join(bad, "kind2.png"), "digits", images, images,
                   word="label file")
    expect_refused(1, os.path.join(bad, "model.png"), "predictions", "--model",
                   os.path.join(out, "history.csv"), "--data", data, word="history.csv")
    expect_refused(2, os.path.join(bad, "cmd.png"), "frobnicate", word="frobnicate")
    expect_refused(2, os.path.join(bad, "count.png"), "digits", images, "--count", "0",
                   word="--count")
    expect_refused(2, os.path.join(bad, "args.png"), "curves", word="curves")
    r = plot("curves", os.path.join(out, "history.csv"))
    check(r.returncode == 2 and "-o" in r.stderr, "missing -o")
    # An output that cannot be written: a missing directory.
    r = plot("curves", os.path.join(out, "history.csv"), "-o", os.path.join(bad, "no", "c.png"))
    check(r.returncode == 1 and "c.png" in r.stderr, f"unwritable output: {r.stderr!r}")

finish("test_plot_cli")
