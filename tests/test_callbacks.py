#!/usr/bin/env python3
"""The engine's callback rules (include/callbacks.h, through
tests/callbacks_probe) against tests/keras_callbacks.py, a transcription of
Keras 3's own code: the stop epoch, the epoch whose weights the model ends
with, the best-model saves and the learning rate of every epoch, over hand-
picked histories (ties, NaN, min_delta on the boundary, cooldown, min_lr)
and thousands of random ones."""
import math
import os
import random
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import check, finish, interpreter_hint  # noqa: E402

try:
    import numpy as np  # noqa: F401  (keras_callbacks needs it)
    import keras_callbacks
except ImportError:
    print(f"test_callbacks: numpy is not installed (python3-numpy): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)

PROBE = sys.argv[1]
MONITORS = ["val_loss", "val_accuracy", "loss", "accuracy"]


def scenario_text(s):
    early = s["early"] or (0, 0.0, 1)
    reduce = s["reduce"] or (0.1, 10, 1e-4, 0, 0.0)
    head = [s["monitor"], int(bool(s["early"])), early[0], repr(early[1]), int(early[2]),
            int(s["save_best"]), int(bool(s["reduce"])), repr(reduce[0]), reduce[1],
            repr(reduce[2]), reduce[3], repr(reduce[4]), repr(s["lr"]), len(s["history"])]
    lines = [" ".join(str(x) for x in head)]
    for logs in s["history"]:
        lines.append(" ".join(repr(logs[k]) for k in ("loss", "accuracy", "val_loss",
                                                     "val_accuracy")))
    return "\n".join(lines)


def expected(s):
    r = keras_callbacks.fit(s["history"], s["monitor"], s["early"], s["save_best"],
                            s["reduce"], s["lr"])
    return r


def parse(line):
    rates, saves, stopped, final = line.split(" | ")
    return {"rates": [float(x) for x in rates.split()[1:]],
            "saves": [x == "1" for x in saves.split()[1:]],
            "stopped": int(stopped.split()[1]), "final": int(final.split()[1])}


def logs_of(values, monitor):
    """A history where the monitored quantity takes the given values."""
    out = []
    for v in values:
        logs = {"loss": 1.0, "accuracy": 0.5, "val_loss": 1.0, "val_accuracy": 0.5}
        logs[monitor] = v
        out.append(logs)
    return out


nan = math.nan
scenarios = []
# Hand-picked: ties never improve; NaN first and later; min_delta exactly on
# the boundary; patience 0; both directions.
for monitor in MONITORS:
    sign = 1 if "loss" in monitor else -1
    for values in ([0.5, 0.4, 0.4, 0.4, 0.3, 0.35, 0.36, 0.37, 0.2],
                   [nan, 0.5, nan, 0.4, 0.4, nan, nan, nan],
                   [nan, nan, nan, nan],
                   [0.5, 0.45, 0.4, 0.35, 0.3, 0.25],
                   [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.1]):
        v = [sign * x for x in values]
        for early in ((0, 0.0, True), (1, 0.0, True), (2, 0.05, True), (2, 0.05, False),
                      (3, -0.05, True)):
            scenarios.append({"monitor": monitor, "history": logs_of(v, monitor),
                              "early": early, "save_best": True, "reduce": None, "lr": 1e-3})
        for reduce in ((0.5, 1, 0.0, 0, 0.0), (0.1, 2, 1e-4, 1, 0.0), (0.5, 1, 0.05, 2, 2e-4),
                       (0.1, 0, 0.0, 0, 1e-3)):
            scenarios.append({"monitor": monitor, "history": logs_of(v, monitor),
                              "early": None, "save_best": False, "reduce": reduce,
                              "lr": 1e-3})
# Random: values from a small set, so that ties and NaN come often.
rnd = random.Random(12)
for _ in range(3000):
    monitor = rnd.choice(MONITORS)
    pool = [rnd.choice([0.1, 0.2, 0.25, 0.3, 0.5]) + rnd.choice([0.0, 0.0, 1e-4, 0.05])
            for _ in range(4)] + [nan]
    history = []
    for _ in range(rnd.randrange(1, 25)):
        history.append({k: rnd.choice(pool) for k in ("loss", "accuracy", "val_loss",
                                                     "val_accuracy")})
    early = (rnd.randrange(0, 5), rnd.choice([0.0, 0.05, -0.05, 1e-4]),
             rnd.random() < 0.7) if rnd.random() < 0.7 else None
    reduce = (rnd.choice([0.1, 0.5, 0.2]), rnd.randrange(0, 4), rnd.choice([1e-4, 0.0, 0.05]),
              rnd.randrange(0, 3), rnd.choice([0.0, 1e-5, 2e-4])) if rnd.random() < 0.6 else None
    scenarios.append({"monitor": monitor, "history": history, "early": early,
                      "save_best": rnd.random() < 0.5, "reduce": reduce,
                      "lr": rnd.choice([1e-3, 0.01, 3e-4])})

text = "\n".join(scenario_text(s) for s in scenarios) + "\n"
r = subprocess.run([PROBE], input=text, capture_output=True, text=True, timeout=120)
check(r.returncode == 0, f"probe failed: {r.stderr}")
lines = r.stdout.splitlines()
check(len(lines) == len(scenarios), f"{len(lines)} answers for {len(scenarios)} scenarios")
bad = 0
stops = lr_changes = restored_earlier = 0
for s, line in zip(scenarios, lines):
    want, got = expected(s), parse(line)
    same = (got["stopped"] == want["stopped"] and got["final"] == want["final"] and
            got["saves"] == want["saves"] and len(got["rates"]) == len(want["rates"]) and
            all(np.float32(a) == np.float32(b) for a, b in zip(got["rates"], want["rates"])))
    stops += want["stopped"] > 0
    lr_changes += len(set(want["rates"])) > 1
    restored_earlier += want["final"] < len(want["rates"])
    if not same:
        bad += 1
        if bad <= 5:
            print("scenario:", scenario_text(s).splitlines()[0])
            print("  keras: ", want)
            print("  engine:", got)
check(bad == 0, f"{bad} of {len(scenarios)} scenarios differ")
print(f"{len(scenarios)} scenarios: {stops} stopped early, {lr_changes} changed the rate, "
      f"{restored_earlier} ended with an earlier epoch's weights")
check(stops > 100 and lr_changes > 100 and restored_earlier > 100,
      "the scenarios exercise too little")
finish("test_callbacks")
