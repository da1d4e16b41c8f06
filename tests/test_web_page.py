#!/usr/bin/env python3
"""trainer export --web: the drawing page in a real browser.

The page of a conv net (trained briefly on real MNIST when data/mnist has
it, else on a generated set) is served from a local server and opened in
headless Chromium (Debian's chromium, driven by playwright-core from
tests/js).  The test draws the ten digits with the mouse, one after the
other with Clear between them, and reads what the page shows: the class,
each class's probability and figure, and the 28x28 bytes it fed the model.
It saves the pad as a PNG file and runs `trainer predict` on it: the class
must be the same (the model's class names, from --class-names), the
probabilities within 1e-5 (ONNX Runtime Web against the engine), the
figures the probabilities rounded, and the bytes the same (the page's
JavaScript preparation against image.c).  A cleared pad shows
nothing.  Opened from a file, the page says how to serve it, and the command
it gives serves a page that works.  Also export --web's errors: no ONNX
Runtime Web where named, an output that is a file, --onnxruntime-web
without --web.

Skipped (77), naming what is missing, without numpy, Node, playwright-core
(npm install --ignore-scripts --prefix tests/js), Chromium or ONNX Runtime
Web (tools/fetch-onnxruntime-web); .ci/run installs them all."""
import base64
import functools
import http.server
import json
import os
import pathlib
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish, interpreter_hint  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])
SOURCE = sys.argv[2]
JS = os.path.join(SOURCE, "tests", "js")
ORT = os.path.join(SOURCE, "data", "onnxruntime-web")
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

try:
    import numpy as np
    from modelrun import read_idx
except ImportError as e:
    print(f"test_web_page: {e.name} is not installed (python3-numpy): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)
missing = [what for what, there in (
    ("Node.js (apt-get install nodejs)", shutil.which("node")),
    ("playwright-core (npm install --ignore-scripts --prefix tests/js)",
     os.path.isdir(os.path.join(JS, "node_modules", "playwright-core"))),
    (f"Chromium at {CHROMIUM} (apt-get install chromium)", os.access(CHROMIUM, os.X_OK)),
    ("ONNX Runtime Web in data/onnxruntime-web (tools/fetch-onnxruntime-web)",
     os.path.exists(os.path.join(ORT, "ort.wasm.min.js")))) if not there]
if missing:
    print(f"test_web_page: {', '.join(missing)} missing: skipped")
    sys.exit(77)

# The ten digits as strokes on the 280 x 280 pad.
DIGITS = [
    [[[140, 45], [85, 75], [75, 140], [90, 205], [140, 235], [190, 205], [205, 140],
      [190, 75], [140, 45]]],
    [[[140, 50], [140, 230]]],
    [[[80, 90], [110, 55], [160, 50], [195, 80], [190, 120], [150, 165], [90, 225],
      [200, 225]]],
    [[[85, 60], [190, 60], [130, 130], [185, 165], [180, 215], [130, 235], [80, 210]]],
    [[[170, 230], [170, 45], [70, 170], [210, 170]]],
    [[[195, 55], [95, 55], [90, 130], [150, 120], [195, 160], [180, 215], [130, 235],
      [80, 210]]],
    [[[180, 50], [120, 90], [90, 160], [100, 215], [145, 235], [185, 205], [180, 160],
      [135, 145], [95, 175]]],
    [[[75, 60], [205, 60], [120, 235]]],
    [[[140, 135], [100, 105], [105, 65], [140, 50], [175, 65], [180, 105], [140, 135],
      [95, 170], [100, 220], [140, 235], [180, 220], [185, 170], [140, 135]]],
    [[[185, 100], [150, 55], [100, 70], [95, 115], [140, 135], [185, 100], [180, 235]]],
]


NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def run(*args):
    return subprocess.run([TRAINER, *args], capture_output=True, text=True, timeout=600)


def model(tmp):
    data = os.path.join(SOURCE, "data", "mnist")
    if os.path.exists(os.path.join(data, "train-images-idx3-ubyte")) or \
            os.path.exists(os.path.join(data, "train-images-idx3-ubyte.gz")):
        args = ["--data", data, "--model", "convnet", "--epochs", "1",
                "--validation-split", "0.8"]
    else:
        data = os.path.join(tmp, "data")
        mnistgen.write_dataset(data, 600, 100)
        args = ["--data", data, "--epochs", "2", "--validation-split", "0", "--layers",
                "conv2d(4,3,same,relu),maxpool2d(2),flatten,dense(10,softmax)"]
    # Named classes: the page shows the names, as trainer predict does.
    names = os.path.join(tmp, "names.txt")
    with open(names, "w") as f:
        f.write("\n".join(NAMES) + "\n")
    out = os.path.join(tmp, "run")
    r = run(*args, "--class-names", names, "--out", out, "--no-plots")
    check(r.returncode == 0, f"training for the test: {r.stderr}")
    return os.path.join(out, "model.ckpt")


def errors(tmp, ckpt):
    nowhere = os.path.join(tmp, "no-ort")
    os.makedirs(nowhere)
    page = os.path.join(tmp, "page-bad")
    r = run("export", "--model", ckpt, "--web", page, "--onnxruntime-web", nowhere)
    check(r.returncode == 1 and "no ort.wasm.min.js" in r.stderr and
          r.stderr.count("\n") == 1 and not os.path.exists(page),
          f"no ONNX Runtime Web where named: {r.returncode} {r.stderr!r}")
    afile = os.path.join(tmp, "a-file")
    open(afile, "w").close()
    r = run("export", "--model", ckpt, "--web", afile, "--onnxruntime-web", ORT)
    check(r.returncode == 1 and "a-file" in r.stderr and os.path.getsize(afile) == 0,
          f"--web to a file: {r.returncode} {r.stderr!r}")
    r = run("export", "--model", ckpt, "--onnxruntime-web", ORT)
    check(r.returncode == 2 and "--web" in r.stderr, f"--onnxruntime-web alone: {r.stderr!r}")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(directory):
    handler = functools.partial(QuietHandler, directory=directory)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def from_file(page, tmp):
    """The page opened as a file, from a folder whose name the shell must
    quote: it says how to serve itself, and that command serves it."""
    odd = os.path.join(tmp, "my page's copy")
    shutil.copytree(page, odd)
    empty = os.path.join(tmp, "none.json")
    with open(empty, "w") as f:
        json.dump([[]], f)
    out = os.path.join(tmp, "from-file.json")
    draw = ["node", os.path.join(JS, "draw_page.mjs")]
    r = subprocess.run(draw + [pathlib.Path(odd, "index.html").as_uri(), empty, out],
                       capture_output=True, text=True, timeout=300)
    said = re.search(r"this page must be served: (python3 -m http\.server -d .*) 8000, "
                     r"then open http://localhost:8000/", r.stderr)
    check(r.returncode != 0 and said is not None,
          f"from a file: no word on serving the page: {r.stderr[-1000:]}")
    if not said:
        return
    command = shlex.split(said.group(1))
    check(command[3:] == ["-d", odd], f"from a file: the command serves {command[3:]}")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable] + command[1:] + [str(port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        r = subprocess.run(draw + [f"http://127.0.0.1:{port}/", empty, out],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0, f"served by the command the page gave: {r.stderr[-1000:]}")
    finally:
        server.terminate()
        server.wait(timeout=30)


with tempfile.TemporaryDirectory() as tmp:
    ckpt = model(tmp)
    errors(tmp, ckpt)
    page = os.path.join(tmp, "page")
    r = run("export", "--model", ckpt, "--web", page, "--onnxruntime-web", ORT)
    check(r.returncode == 0 and "http.server" in r.stdout, f"export --web: {r.stderr}")
    names = sorted(os.listdir(page))
    check(names == sorted(["index.html", "page.js", "prepare.js", "model.onnx", "model.json",
                           "ort.wasm.min.js", "ort-wasm-simd-threaded.mjs",
                           "ort-wasm-simd-threaded.wasm"]), f"the page's files: {names}")
    with open(os.path.join(page, "prepare.js")) as f, \
            open(os.path.join(SOURCE, "tools", "web", "prepare.js")) as g:
        check(f.read() == g.read(), "the page's prepare.js is tools/web/prepare.js")

    server = serve(page)
    drawings = os.path.join(tmp, "drawings.json")
    with open(drawings, "w") as f:
        json.dump(DIGITS + [[]], f)
    out = os.path.join(tmp, "shown.json")
    shot = os.environ.get("TRAINER_PAGE_SCREENSHOT")
    r = subprocess.run(["node", os.path.join(JS, "draw_page.mjs"),
                        f"http://127.0.0.1:{server.server_address[1]}/", drawings, out] +
                       ([os.path.abspath(shot)] if shot else []),
                       capture_output=True, text=True, timeout=300)
    server.shutdown()
    check(r.returncode == 0, f"the browser: {r.stderr[-2000:]}")
    with open(out) as f:
        shown = json.load(f)
    check(shown["problems"] == [], f"the page's errors: {shown['problems']}")
    results, cleared = shown["results"][:10], shown["results"][10]
    check(cleared["shown"] == "" and cleared["input"] is None and
          all(p is None for p in cleared["probabilities"]) and "no ink" in cleared["error"],
          f"a cleared pad shows nothing: {cleared['shown']!r} {cleared['error']!r}")

    pngs = []
    for k, res in enumerate(results):
        path = os.path.join(tmp, f"drawn-{k}.png")
        with open(path, "wb") as f:
            f.write(base64.b64decode(res["png"]))
        pngs.append(path)
    seen = os.path.join(tmp, "seen.idx")
    r = run("predict", "--json", "--model", ckpt, "--save-input", seen, *pngs)
    check(r.returncode == 0, f"trainer predict on the drawn pads: {r.stderr}")
    verdicts = [json.loads(line) for line in r.stdout.splitlines()]
    inputs = read_idx(seen).reshape(len(pngs), -1)
    worst, right = 0.0, 0
    for k, (res, v, want) in enumerate(zip(results, verdicts, inputs)):
        check(res["input"] is not None and np.array_equal(np.array(res["input"]), want),
              f"digit {k}: the page fed the model other bytes than trainer predict")
        check(res["shown"] == str(v["class"]),
              f"digit {k}: the page shows {res['shown']}, trainer predict {v['class']}")
        p, q = np.array(res["probabilities"], float), np.array(v["probabilities"])
        worst = max(worst, float(np.abs(p - q).max()))
        check(res["figures"] == [f"{100 * x:.2f}%" for x in p],
              f"digit {k}: the figures are the probabilities: {res['figures']}")
        check(v["class"] == NAMES[v["index"]], f"digit {k}: predict's name {v['class']}")
        right += v["index"] == k
    from_file(page, tmp)
    print(f"10 drawn digits: the page's class is trainer predict's on all 10, the same "
          f"28x28 bytes, probabilities within {worst:.2g}; {right} of 10 read as drawn")
    check(worst < 1e-5, f"probabilities {worst} from trainer predict's")
finish("test_web_page")
