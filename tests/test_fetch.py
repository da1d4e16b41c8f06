#!/usr/bin/env python3
"""tools/fetch-mnist without the network: files that do not match the known
SHA-256 are refused and nothing lands in the folder; with a real copy all
four are verified and put in place, and a second run fetches nothing.  The
real copy is the shared one where there is one, else the checkout's own
data/mnist, which the Quick start fetched (plain files, which a mirror may
hold as well as .gz ones)."""
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
import testlib  # noqa: E402
from testlib import check, finish  # noqa: E402

FETCH = os.path.abspath(sys.argv[1])
COPIES = [os.path.abspath(p) for p in sys.argv[2:]]
NAMES = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]


def fetch(dest, mirror):
    # No network: PATH without curl, wget and npm, so only the mirror is tried.
    env = {"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/tmp")}
    bindir = os.path.join(os.path.dirname(dest), "bin")
    os.makedirs(bindir, exist_ok=True)
    for tool in ("curl", "wget", "npm"):
        path = os.path.join(bindir, tool)
        with open(path, "w") as f:
            f.write("#!/bin/sh\nexit 1\n")
        os.chmod(path, 0o755)
    env["PATH"] = bindir + ":" + env["PATH"]
    return subprocess.run([FETCH, "--dest", dest, "--mirror", mirror], capture_output=True,
                          text=True, env=env, timeout=300)


shared_absent = False
with tempfile.TemporaryDirectory() as tmp:
    fake = os.path.join(tmp, "fake")
    mnistgen.write_dataset(fake, n_train=50, n_test=10)
    dest = os.path.join(tmp, "data", "mnist")
    r = fetch(dest, fake)
    print(r.stdout, r.stderr)
    check(r.returncode == 1, f"wrong files: status {r.returncode}")
    check("does not verify" in r.stderr, "wrong files are reported")
    check(os.listdir(dest) == [], f"wrong files landed: {os.listdir(dest)}")
    check(not [n for n in os.listdir(os.path.dirname(dest)) if n.startswith(".fetch")],
          "the staging folder was left behind")

    r = subprocess.run([FETCH, "--frobnicate"], capture_output=True, text=True)
    check(r.returncode == 2, "an unknown argument gives status 2")

    SHARED = next((c for c in COPIES
                   if all(os.path.exists(os.path.join(c, n + ".gz")) or
                          os.path.exists(os.path.join(c, n)) for n in NAMES)), None)
    if SHARED:
        print(f"the real files from {SHARED}")
        r = fetch(dest, SHARED)
        print(r.stdout, r.stderr)
        check(r.returncode == 0, f"the real files: status {r.returncode}")
        check(sorted(os.listdir(dest)) == sorted(NAMES),
              f"the real files, stored decompressed: {os.listdir(dest)}")
        r = fetch(dest, fake)  # a second run needs no source at all
        check(r.returncode == 0 and r.stdout.count("already there, verified") == 4,
              "verified files are not fetched again")
        with open(os.path.join(dest, NAMES[1]), "r+b") as f:
            f.seek(100)
            f.write(b"\0\0\0\0")
        r = fetch(dest, SHARED)
        check(r.returncode == 0 and "from " in r.stdout,
              "a damaged file is fetched again from the mirror")
    else:
        shared_absent = True

if shared_absent:
    # The refusal paths ran; without the real files the rest cannot, and the
    # test must not pass as if it had.
    if testlib.failures:
        finish("test_fetch")
    print(f"SKIP: no MNIST copy at {' or '.join(COPIES)} (tools/fetch-mnist fetches one "
          "into data/mnist): only the refusal paths were tested")
    sys.exit(77)
finish("test_fetch")
