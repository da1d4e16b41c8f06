#!/usr/bin/env python3
"""meson install into a temporary DESTDIR: the programs, libtrainer.a, the
headers and the pkg-config file land; the README's C example, compiled with
`pkg-config --cflags --libs trainer` against that tree alone, trains on a small
dataset, and the model it saves is read back by the installed trainer with
the test accuracy the example printed.

Arguments: the build directory, the C compiler (as meson runs it) and the
flags the build adds everywhere (sanitizers), which a program linking the
library needs too."""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish  # noqa: E402

BUILD = os.path.abspath(sys.argv[1])
CC = sys.argv[2].split()
EXTRA = [f for f in sys.argv[3:] if f]
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")

if not shutil.which("pkg-config"):
    print("SKIP: pkg-config is missing, so the installed library cannot be looked up")
    sys.exit(77)

with open(README) as f:
    text = f.read()
m = re.search(r"```c\n(/\* example\.c .*?)```", text, re.S)
check(m is not None, "the README has no example.c")
example = m.group(1) if m else ""

with tempfile.TemporaryDirectory() as tmp:
    dest = os.path.join(tmp, "dest")
    r = subprocess.run(["meson", "install", "-C", BUILD, "--no-rebuild", "--destdir", dest],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"meson install failed: {r.stdout[-2000:]} {r.stderr[-2000:]}")
    found = {os.path.relpath(p, dest) for p in glob.glob(dest + "/**", recursive=True)
             if os.path.isfile(p)}
    want = [r"bin/trainer$", r"bin/trainer-plot$", r"lib/.*libtrainer\.a$",
            r"include/trainer/train\.h$", r"include/trainer/error\.h$",
            r"lib/.*pkgconfig/trainer\.pc$"]
    for pattern in want:
        check(any(re.search(pattern, p) for p in found), f"{pattern} was not installed")
    pcs = glob.glob(dest + "/**/pkgconfig/trainer.pc", recursive=True)
    env = dict(os.environ)
    if pcs:
        env["PKG_CONFIG_PATH"] = os.path.dirname(pcs[0])
        env["PKG_CONFIG_SYSROOT_DIR"] = dest
    r = subprocess.run(["pkg-config", "--cflags", "--libs", "trainer"], capture_output=True,
                       text=True, env=env)
    check(r.returncode == 0, f"pkg-config trainer: {r.stderr}")
    flags = r.stdout.split()
    check(any(f.startswith("-I" + dest) for f in flags) and "-ltrainer" in flags,
          f"pkg-config gives {flags}, not the staged tree")
    # Nothing of the source tree may be used: only the staged one.
    src = os.path.join(tmp, "example.c")
    with open(src, "w") as f:
        f.write(example)
    exe = os.path.join(tmp, "example")
    r = subprocess.run(CC + EXTRA + [src, "-o", exe] + flags, capture_output=True, text=True,
                       env=env, timeout=300)
    check(r.returncode == 0, f"the example does not build: {r.stderr[-3000:]}")

    data = os.path.join(tmp, "data")
    mnistgen.write_dataset(data, n_train=600, n_test=100)
    run = os.path.join(tmp, "run")
    os.makedirs(run)
    if r.returncode == 0:
        r = subprocess.run([exe, data], cwd=run, capture_output=True, text=True, timeout=300)
        print(r.stdout, r.stderr)
        check(r.returncode == 0 and r.stdout.count("epoch ") == 3,
              f"the example: status {r.returncode}, {r.stderr!r}")
        acc = re.search(r"test accuracy (\d\.\d+)", r.stdout)
        check(acc is not None and float(acc.group(1)) > 0.9,
              f"the example did not learn: {r.stdout!r}")
        trainer = [p for p in glob.glob(dest + "/**/bin/trainer", recursive=True)]
        if acc and trainer:
            r = subprocess.run([trainer[0], "--load", os.path.join(run, "example.ckpt"),
                                "--data", data, "--epochs", "0"],
                               capture_output=True, text=True, timeout=300)
            check(r.returncode == 0 and f"test accuracy: {acc.group(1)}" in r.stdout,
                  f"the installed trainer reads the example's model differently: "
                  f"{r.stdout[-500:]!r} {r.stderr!r}")

finish("test_install")
