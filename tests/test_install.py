#!/usr/bin/env python3
"""docs/library.md's staged install, its shell commands run as written: meson
install into a DESTDIR lands the programs, libtrainer.a, the headers and the
pkg-config file; its C example, compiled with `pkg-config --cflags
--libs trainer` against that tree alone (PKG_CONFIG_SYSROOT_DIR), trains on
a small dataset, and the model it saves is read back by the installed
trainer with the test accuracy the example printed.

Arguments: the build directory, the C compiler (as meson runs it) and the
flags the build adds everywhere (sanitizers), which a program linking the
library needs too."""
import glob
import os
import re
import shlex
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
GUIDE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "library.md")

if not shutil.which("pkg-config"):
    print("SKIP: pkg-config is missing, so the installed library cannot be looked up")
    sys.exit(77)

with open(GUIDE) as f:
    text = f.read()
m = re.search(r"```c\n(/\* example\.c .*?)```", text, re.S)
check(m is not None, "docs/library.md has no example.c")
example = m.group(1) if m else ""
m = re.search(r"```sh\n(meson install -C build --destdir .*?)```", text, re.S)
check(m is not None, "docs/library.md has no staged install")
staging = m.group(1) if m else "false\n"

with tempfile.TemporaryDirectory() as tmp:
    # The guide's staging commands, run as written in a folder that has what
    # they name: build (this build), example.c, data/mnist; its `cc` is the
    # build's compiler with the flags a program linking the library needs.
    os.symlink(BUILD, os.path.join(tmp, "build"))
    with open(os.path.join(tmp, "example.c"), "w") as f:
        f.write(example)
    mnistgen.write_dataset(os.path.join(tmp, "data", "mnist"), n_train=600, n_test=100)
    tools = os.path.join(tmp, "bin")
    os.makedirs(tools)
    with open(os.path.join(tools, "cc"), "w") as f:
        real = [shutil.which(CC[0]) or CC[0]] + CC[1:] + EXTRA  # not this cc again
        f.write("#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in real) + ' "$@"\n')
    os.chmod(os.path.join(tools, "cc"), 0o755)
    env = dict(os.environ, PATH=tools + os.pathsep + os.environ.get("PATH", ""))
    for name in ("PKG_CONFIG_PATH", "PKG_CONFIG_SYSROOT_DIR", "PKG_CONFIG_LIBDIR"):
        env.pop(name, None)
    r = subprocess.run(["bash", "-e", "-u", "-o", "pipefail", "-c",
                        staging + 'echo "pkg-config: $(pkg-config --cflags --libs trainer)"\n'],
                       cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    print(r.stdout[-3000:], r.stderr[-3000:])
    check(r.returncode == 0, f"the guide's staged install: status {r.returncode}, "
          f"{r.stderr[-2000:]!r}")

    dest = os.path.join(tmp, "stage")
    found = {os.path.relpath(p, dest) for p in glob.glob(dest + "/**", recursive=True)
             if os.path.isfile(p)}
    want = [r"bin/trainer$", r"bin/trainer-plot$", r"lib/.*libtrainer\.a$",
            r"include/trainer/train\.h$", r"include/trainer/error\.h$",
            r"lib/.*pkgconfig/trainer\.pc$"]
    for pattern in want:
        check(any(re.search(pattern, p) for p in found), f"{pattern} was not installed")
    flags = re.search(r"^pkg-config: (.*)$", r.stdout, re.M)
    flags = flags.group(1).split() if flags else []
    check(any(f.startswith("-I" + dest) for f in flags) and "-ltrainer" in flags,
          f"pkg-config gives {flags}, not the staged tree")

    check(r.stdout.count("epoch ") == 3, f"the example's epochs: {r.stdout[-1000:]!r}")
    acc = re.search(r"test accuracy (\d\.\d+)", r.stdout)
    check(acc is not None and float(acc.group(1)) > 0.9,
          f"the example did not learn: {r.stdout[-1000:]!r}")
    trainer = glob.glob(dest + "/**/bin/trainer", recursive=True)
    if acc and trainer:
        r = subprocess.run([trainer[0], "--load", os.path.join(tmp, "example.ckpt"),
                            "--data", os.path.join(tmp, "data", "mnist"), "--epochs", "0",
                            "--no-plots", "--out", os.path.join(tmp, "check")],
                           capture_output=True, text=True, timeout=300)
        check(r.returncode == 0 and f"test accuracy: {acc.group(1)}" in r.stdout,
              f"the installed trainer reads the example's model differently: "
              f"{r.stdout[-500:]!r} {r.stderr!r}")

finish("test_install")
