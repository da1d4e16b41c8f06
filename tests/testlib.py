"""What the program-level tests share: checks that record a failure and go on,
and the closing line and exit status."""
import os
import sys

failures = 0


def interpreter_hint():
    """Which interpreter ran the test, and how to choose another: a skip for
    a missing module names both (a pyenv or venv python3 without numpy
    made the tests skip while Debian's had it)."""
    return (f"in {sys.executable}; choose an interpreter that has it with "
            f"meson configure -Dpython=/usr/bin/python3 BUILD_DIR")


def check(cond, what):
    """Records a failed check (and goes on, so one run shows them all)."""
    global failures
    if not cond:
        failures += 1
        print("FAIL:", what)


def finish(name):
    """Prints the summary and exits 1 if any check failed."""
    if failures:
        print(f"{name}: {failures} check(s) failed")
        sys.exit(1)
    print(f"{name}: all checks passed")


def snapshot(path):
    """Every file under path with its bytes."""
    out = {}
    for root, _, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            with open(full, "rb") as f:
                out[os.path.relpath(full, path)] = f.read()
    return out


def run_outputs(d):
    """What must not change between two runs that promise the same bits:
    model.ckpt's bytes and history.csv's first five columns (not the seconds)."""
    with open(os.path.join(d, "model.ckpt"), "rb") as f:
        model = f.read()
    with open(os.path.join(d, "history.csv")) as f:
        cols = [line.split(",")[:5] for line in f]
    return model, cols
