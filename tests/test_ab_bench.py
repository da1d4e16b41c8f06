#!/usr/bin/env python3
"""tools/ab-bench: refuses bad arguments with status 2, and with one round of
two real benchmark runs (random data, one epoch) prints both medians and their
ratio; trainer-bench's --threads and --batch-size."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import check, finish  # noqa: E402

AB = os.path.abspath(sys.argv[1])
BENCH = os.path.abspath(sys.argv[2])


def run(*args):
    return subprocess.run([AB, *args], capture_output=True, text=True, timeout=300)


r = run(BENCH)
check(r.returncode == 2 and "usage" in r.stderr, "one benchmark only: usage, status 2")
r = run(BENCH, "/nonexistent/trainer-bench")
check(r.returncode == 2, "a benchmark that is not there: status 2")
r = run("-n", "0", BENCH, BENCH)
check(r.returncode == 2 and "rounds" in r.stderr, "zero rounds: status 2")

# A data folder that does not exist: trainer-bench says so and uses random data.
r = run("-n", "1", BENCH, BENCH, "--epochs", "1", "--data", "/nonexistent")
print(r.stdout, r.stderr)
check(r.returncode == 0, f"one round: status {r.returncode}")
medians = re.findall(r"median (\d+) samples/s", r.stdout)
check(len(medians) == 2 and all(int(m) > 1000 for m in medians),
      f"two medians of real runs: {medians}")
check(re.search(r"B / A = \d+\.\d{3}", r.stdout) is not None, "the ratio is printed")

# The options ab-bench passes on: one thread at batch 16, and a bad count.
r = run("-n", "1", BENCH, BENCH, "--epochs", "1", "--data", "/nonexistent", "--threads", "1",
        "--batch-size", "16")
check(r.returncode == 0 and len(re.findall(r"median \d+ samples/s", r.stdout)) == 2,
      f"--threads 1 --batch-size 16: status {r.returncode}")
r = subprocess.run([BENCH, "--quick", "--threads", "0"], capture_output=True, text=True,
                   timeout=60)
check(r.returncode == 2 and "--threads '0'" in r.stderr, "--threads 0: status 2, named")

finish("test_ab_bench")
