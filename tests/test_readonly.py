#!/usr/bin/env python3
"""An output directory the trainer may not write into: status 1, a message
naming it, and the directory as it was. As root, permissions do not stop
writes, so the trainer then runs as nobody through runuser; without runuser
the test is skipped (77), not passed."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mnistgen  # noqa: E402
from testlib import check, finish, snapshot  # noqa: E402

TRAINER = os.path.abspath(sys.argv[1])

if os.geteuid() == 0 and not shutil.which("runuser"):
    print("SKIP: running as root and runuser is missing, so the trainer cannot be run as an "
          "unprivileged user; the read-only --out case was not run")
    sys.exit(77)

with tempfile.TemporaryDirectory() as tmp:
    data = os.path.join(tmp, "data")
    mnistgen.write_dataset(data, n_train=300, n_test=50)
    ro = os.path.join(tmp, "readonly")
    r = subprocess.run([TRAINER, "--data", data, "--out", ro, "--epochs", "1"],
                       capture_output=True, text=True, timeout=300)
    check(r.returncode == 0, f"a first run: {r.stderr}")
    before = snapshot(ro)
    os.chmod(ro, 0o555)
    cmd = [TRAINER, "--data", data, "--out", ro, "--epochs", "1"]
    if os.geteuid() == 0:
        for d in (tmp, data):
            os.chmod(d, os.stat(d).st_mode | stat.S_IRWXO)
        for f in os.listdir(data):
            os.chmod(os.path.join(data, f), 0o644)
        # A copy of the program, where nobody may run it whatever the build
        # directory's permissions.
        copy = os.path.join(tmp, "trainer")
        shutil.copy(TRAINER, copy)
        os.chmod(copy, 0o755)
        cmd = ["runuser", "-u", "nobody", "--", copy] + cmd[1:]
    r = subprocess.run(cmd, cwd="/", capture_output=True, text=True, timeout=300)
    check(r.returncode == 1 and "readonly" in r.stderr and "cannot write there" in r.stderr,
          f"read-only --out: status {r.returncode}, {r.stderr!r}")
    check(snapshot(ro) == before, "a read-only --out was changed")
    os.chmod(ro, 0o755)

finish("test_readonly")
