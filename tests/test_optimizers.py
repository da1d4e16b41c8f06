#!/usr/bin/env python3
"""The engine's optimizers and schedules (include/optimizer.h, through
tests/optimizer_probe) against this file's own transcription of Keras 3's
update_step code (Adam, AdamW, SGD with and without Nesterov momentum,
RMSprop with and without momentum, the base optimizer's weight decay) in
float32 numpy, of Keras' CosineDecay (with warm-up) and ExponentialDecay in
float64, and of PyTorch's OneCycleLR itself when torch is installed (else a
transcription of its formula).  The gradient is handed over as several
shard buffers and the update split in two slices, as training does."""
import math
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from testlib import check, finish, interpreter_hint  # noqa: E402

try:
    import numpy as np
except ImportError:
    print(f"test_optimizers: numpy is not installed (python3-numpy): skipped"
          f" {interpreter_hint()}")
    sys.exit(77)
try:
    import torch
except ImportError:
    torch = None

PROBE = sys.argv[1]
N = 37
f32 = np.float32

# kind lr momentum nesterov weight_decay schedule warmup decay_rate
# steps_per_epoch epochs steps shards
SCENARIOS = [
    ("adam", 1e-3, 0, 0, 0, "constant", 0, 1, 5, 4, 20, 2),
    ("adamw", 1e-2, 0, 0, 0.004, "cosine", 1, 1, 5, 4, 20, 3),
    ("adam", 1e-2, 0, 0, 0, "cosine", 0, 1, 5, 3, 15, 1),
    ("sgd", 5e-2, 0, 0, 0, "constant", 0, 1, 5, 2, 10, 1),
    ("sgd", 5e-2, 0.9, 1, 0, "exponential", 0, 0.5, 4, 5, 20, 4),
    ("sgd", 5e-2, 0.9, 0, 0.01, "onecycle", 0, 1, 5, 6, 30, 2),
    ("sgd", 5e-2, 0.5, 0, 0, "constant", 1.5, 1, 4, 4, 16, 2),
    ("rmsprop", 1e-3, 0, 0, 0, "constant", 0, 1, 5, 3, 15, 2),
    ("rmsprop", 1e-3, 0.5, 0, 0.001, "onecycle", 2, 1, 5, 4, 20, 3),
    ("adam", 3e-3, 0, 0, 0, "onecycle", 0, 1, 7, 3, 21, 2),
    ("rmsprop", 1e-2, 0, 0, 0, "exponential", 1, 0.8, 3, 4, 12, 1),
]


def keras_cosine(step, lr, decay_steps, warmup_steps):
    """keras.optimizers.schedules.CosineDecay(0.0, decay_steps, alpha=0.0,
    warmup_target=lr, warmup_steps=warmup_steps) (or without warm-up:
    CosineDecay(lr, decay_steps))."""
    if warmup_steps == 0:
        step = min(step, decay_steps)
        return lr * (0.5 * (1.0 + math.cos(math.pi * step / decay_steps)))
    if step < warmup_steps:
        return (lr - 0.0) * (step / warmup_steps) + 0.0
    step = min(step, decay_steps + warmup_steps) - warmup_steps
    return lr * (0.5 * (1.0 + math.cos(math.pi * step / decay_steps)))


def onecycle_rates(lr, total, pct_start):
    if torch is not None:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=lr)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total,
                                                    pct_start=pct_start,
                                                    cycle_momentum=False)
        out = []
        for _ in range(total):
            out.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        return out
    initial, end1 = lr / 25.0, pct_start * total - 1
    final = initial / 1e4

    def cos_anneal(a, b, pct):
        return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
    return [cos_anneal(initial, lr, i / end1) if i <= end1 else
            cos_anneal(lr, final, (i - end1) / (total - 1 - end1)) for i in range(total)]


def rates(s):
    kind, lr, mom, nest, wd, sched, warm, decay, per, epochs, steps, shards = s
    total, w = per * epochs, round(warm * per)
    if sched == "onecycle":
        return onecycle_rates(lr, total, w / total if w else 0.3)[:steps]
    out = []
    for i in range(steps):
        if i < w:
            out.append(lr * i / w)
        elif sched == "cosine":
            out.append(keras_cosine(i, lr, total - w, w))
        elif sched == "exponential":
            out.append(lr * decay ** ((i - w) / per))  # ExponentialDecay(lr, per, decay)
        else:
            out.append(lr)
    return out


def keras_steps(s, lrs):
    """Keras 3's apply(): weight decay, then update_step, in float32."""
    kind, lr, mom, nest, wd, sched, warm, decay, per, epochs, steps, shards = s
    j = np.arange(N, dtype=f32)
    p = (f32(0.5) * np.sin(j)).astype(f32)
    m = np.zeros(N, f32)
    v = np.zeros(N, f32)
    b1, b2, eps, rho = f32(0.9), f32(0.999), f32(1e-7), f32(0.9)
    for t in range(1, steps + 1):
        g = (np.sin(f32(0.37) * j + f32(1.3) * f32(t)) +
             f32(0.1) * np.cos(j * f32(t))).astype(f32)
        lr_t = f32(lrs[t - 1])
        if wd:
            p = p - p * f32(wd) * lr_t
        if kind in ("adam", "adamw"):
            b1p, b2p = f32(b1 ** f32(t)), f32(b2 ** f32(t))
            alpha = lr_t * np.sqrt(f32(1) - b2p) / (f32(1) - b1p)
            m = m + (g - m) * (f32(1) - b1)
            v = v + (np.square(g) - v) * (f32(1) - b2)
            p = p - (m * alpha) / (np.sqrt(v) + eps)
        elif kind == "sgd":
            if mom:
                m = m * f32(mom) - g * lr_t
                p = p + (m * f32(mom) - g * lr_t if nest else m)
            else:
                p = p - g * lr_t
        else:
            v = rho * v + (f32(1) - rho) * np.square(g)
            inc = lr_t * g / np.sqrt(v + eps)
            if mom:
                m = f32(mom) * m + inc
                p = p - m
            else:
                p = p - inc
    return p, m, v


def main():
    text = "\n".join(" ".join(str(x) for x in s) for s in SCENARIOS) + "\n"
    r = subprocess.run([PROBE], input=text, capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, f"the probe failed: {r.stderr.strip()}")
    lines = r.stdout.splitlines()
    check(len(lines) == 4 * len(SCENARIOS), f"{len(lines)} lines from the probe")
    if len(lines) != 4 * len(SCENARIOS):
        return
    print(f"onecycle reference: {'torch ' + torch.__version__ if torch else 'transcription'}")
    for k, s in enumerate(SCENARIOS):
        got_lr = np.array(lines[4 * k].split(), dtype=np.float64)
        got_p, got_m, got_v = (np.array(lines[4 * k + i].split(), dtype=np.float64)
                               for i in (1, 2, 3))
        want_lr = np.array(rates(s))
        name = f"{s[0]} {s[5]} (momentum {s[2]}, nesterov {s[3]}, wd {s[4]}, warm-up {s[6]})"
        lr_err = np.max(np.abs(got_lr - want_lr) / want_lr.clip(min=1e-12)) if len(want_lr) else 0
        # The first warm-up rate is 0: compare it absolutely.
        lr_ok = np.allclose(got_lr, want_lr, rtol=2e-6, atol=1e-12)
        check(lr_ok, f"{name}: rates differ (worst relative {lr_err:.3g})\n"
              f"  got  {got_lr[:8]}\n  want {want_lr[:8]}")
        p, m, v = keras_steps(s, got_lr.astype(np.float32))
        # float32 rounding (the probe's gradients and updates may fuse
        # multiply-adds) grows with the steps and the values' size.
        for what, got, want in (("p", got_p, p), ("m", got_m, m), ("v", got_v, v)):
            err = np.max(np.abs(got - want.astype(np.float64)))
            tol = 2e-7 * s[10] * max(1.0, float(np.max(np.abs(want))))
            check(err <= tol, f"{name}: {what} differs by {err:.3g} (tolerance {tol:.3g})")
        print(f"{name}: {s[10]} steps, rates within {lr_err:.2g}, "
              f"p within {np.max(np.abs(got_p - p)):.2g}")
    # A changed formula must show: plain sgd against the transcription with
    # momentum is far off.
    s = SCENARIOS[3]
    p, _, _ = keras_steps(s[:2] + (0.9,) + s[3:], rates(s))
    got = np.array(lines[4 * 3 + 1].split(), dtype=np.float64)
    check(np.max(np.abs(got - p)) > 1e-3, "the comparison cannot tell momentum from none")


if __name__ == "__main__":
    main()
    finish("test_optimizers")
