#!/usr/bin/env python3
"""Every command of the README's shell blocks, as written; every relative
link of the README and docs/ to a file and heading that exist.

The commands run in the README's order in a sandbox laid out as the Quick
start leaves a user: a build/ folder holding trainer and trainer-plot (this
build's), data/mnist (a small generated set, so that the runs take seconds)
beside it, a digit.png for `trainer predict`, and ../my-pictures with two
class folders of PNG files.  `cd build` moves there.
Each trainer, trainer-plot and mpirun command must exit with 0; `python3 -m
http.server` must serve the exported page.  Setup commands (apt-get, meson,
npm, the fetchers) are not run, but the tools they name must exist.  A
command whose data or tool is absent here (Fashion-MNIST's package, mpirun,
ONNX Runtime Web) is skipped, and said.

Arguments: trainer, trainer-plot, the source tree."""
import os
import re
import shlex
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish  # noqa: E402

TRAINER, PLOT, SOURCE = (os.path.abspath(p) for p in sys.argv[1:4])
# A sanitizer or fuzzing build trains the conv nets at tens of samples a
# second: it gets a smaller set, and leaves out the commands on a full one.
INSTRUMENTED = sys.argv[4:5] == ["instrumented"]
SETUP = {"apt-get", "meson", "npm", "sudo"}
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":detect_leaks=0")


def commands(text):
    """The commands of the ```sh blocks, in order, each a list of words;
    lines joined with && are separate commands."""
    found = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            part = []
            for w in words + ["&&"]:
                if w == "&&":
                    if part:
                        found.append(part)
                    part = []
                else:
                    part.append(w)
    return found


def png_grey(path, rows):
    """A grey 8-bit PNG of the rows of bytes."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data)))
    raw = b"".join(b"\0" + bytes(r) for r in rows)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" +
                chunk(b"IHDR", struct.pack(">IIBBBBB", len(rows[0]), len(rows), 8, 0, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def has_mpi(cwd):
    if not shutil.which("mpirun"):
        return False
    r = subprocess.run(["mpirun", "-np", "1", TRAINER, "--epochs", "0", "--no-plots", "--out",
                        os.path.join(cwd, "mpi-probe")], cwd=cwd, capture_output=True,
                       text=True, timeout=300, env=ENV)
    return "has no MPI" not in r.stderr and r.returncode == 0


def serve_page(cmd, cwd):
    """python3 -m http.server -d DIR [PORT]: it must serve DIR's index.html."""
    port = int(cmd[-1]) if cmd[-1].isdigit() else 8000
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", port)) == 0:
            print(f"skipped {' '.join(cmd)}: port {port} is taken here")
            return
    p = subprocess.Popen([sys.executable] + cmd[1:], cwd=cwd, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        body = b""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
                    body = r.read()
                break
            except OSError:
                time.sleep(0.1)
        check(b"Draw a digit" in body, f"{' '.join(cmd)} does not serve the page")
    finally:
        p.terminate()
        p.wait(timeout=30)


def slug(heading):
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def check_links(path):
    """Every relative link of a Markdown file names a file that exists and,
    with #anchor, one of its headings."""
    with open(path) as f:
        text = f.read()
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        where = os.path.normpath(os.path.join(os.path.dirname(path), file)) if file else path
        check(os.path.exists(where), f"{os.path.relpath(path, SOURCE)}: {target}: no such file")
        if anchor and os.path.exists(where):
            with open(where) as f:
                heads = {slug(h) for h in re.findall(r"^#+ (.*)$", f.read(), re.M)}
            check(anchor in heads, f"{os.path.relpath(path, SOURCE)}: {target}: no such heading")


check_links(os.path.join(SOURCE, "README.md"))
for name in sorted(os.listdir(os.path.join(SOURCE, "docs"))):
    if name.endswith(".md"):
        check_links(os.path.join(SOURCE, "docs", name))

with open(os.path.join(SOURCE, "README.md")) as f:
    readme = f.read()
todo = commands(readme)
check(len(todo) >= 15, f"only {len(todo)} commands found in the README")

with tempfile.TemporaryDirectory() as tmp:
    build = os.path.join(tmp, "build")
    os.makedirs(build)
    os.symlink(TRAINER, os.path.join(build, "trainer"))
    os.symlink(PLOT, os.path.join(build, "trainer-plot"))
    mnistgen.write_dataset(os.path.join(tmp, "data", "mnist"),
                           n_train=64 if INSTRUMENTED else 200, n_test=50)
    os.symlink(os.path.join(tmp, "data"), os.path.join(build, "data"))
    # A dark 1 on white paper.
    png_grey(os.path.join(build, "digit.png"),
             [[30 if 12 <= x < 16 and 4 <= y < 24 else 235 for x in range(28)]
              for y in range(28)])
    # A user's folder of pictures, one subfolder per class.
    for k, name in enumerate(("leaf", "stone")):
        os.makedirs(os.path.join(tmp, "my-pictures", name))
        for i in range(1, 13):
            png_grey(os.path.join(tmp, "my-pictures", name, f"{i}.png"),
                     [[200 if (y < 16) == (k == 0) else (i * 7 + x) % 40 for x in range(32)]
                      for y in range(32)])
    cwd, ran, skipped, mpi = tmp, 0, [], None
    ort = os.path.join(SOURCE, "data", "onnxruntime-web", "ort.wasm.min.js")
    for cmd in todo:
        text = " ".join(cmd)
        prog = cmd[0]
        if prog == "cd":
            cwd = os.path.join(cwd, cmd[1])
            check(os.path.isdir(cwd), f"{text}: no such folder in the sandbox")
            continue
        if prog in SETUP or prog.startswith("$("):
            continue
        if prog.startswith("tools/") or prog.startswith(".ci/"):
            check(os.access(os.path.join(SOURCE, prog), os.X_OK), f"{text}: no {prog}")
            continue
        if "--data" in cmd and os.path.isabs(cmd[cmd.index("--data") + 1]):
            where = cmd[cmd.index("--data") + 1]
            if not os.path.isdir(where) or INSTRUMENTED:
                why = "a full set in an instrumented build" if INSTRUMENTED else f"no {where}"
                skipped.append(f"{text} ({why})")
                continue
        if "--web" in cmd and not os.path.exists(ort):
            skipped.append(f"{text} (no ONNX Runtime Web: tools/fetch-onnxruntime-web)")
            continue
        if prog == "python3" and cmd[1:3] == ["-m", "http.server"]:
            if "page" in cmd and not os.path.isdir(os.path.join(cwd, "page")):
                skipped.append(f"{text} (no page was exported)")
                continue
            serve_page(cmd, cwd)
            print(f"$ {text}  -> served the page")
            ran += 1
            continue
        if prog == "mpirun":
            mpi = has_mpi(cwd) if mpi is None else mpi
            if not mpi:
                skipped.append(f"{text} (no mpirun, or a trainer without MPI)")
                continue
        elif prog not in ("./trainer", "./trainer-plot"):
            check(False, f"{text}: the test does not know how to run {prog}")
            continue
        start = time.time()
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=ENV)
        print(f"$ {text}  -> {r.returncode} in {time.time() - start:.1f}s")
        # The small set's model may make no mistakes, which --errors says.
        flawless = "--errors" in cmd and r.returncode == 1 and "no mistakes" in r.stderr
        check(r.returncode == 0 or flawless, f"{text}: status {r.returncode}: {r.stderr[-1500:]}")
        ran += 1
    print(f"{ran} commands ran; skipped: {skipped if skipped else 'none'}")
    check(ran >= 12, f"only {ran} commands ran")
finish("test_readme")
