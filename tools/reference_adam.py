#!/usr/bin/env python3
"""Independent reference values for tests/test_adam.c.

Three Adam steps in float64 with numpy, in Keras' form (epsilon added to
sqrt(v), step size lr * sqrt(1 - beta2^t) / (1 - beta1^t)), on the parameters
and gradients that the test uses.  Run it and paste the printed arrays."""
import numpy as np

lr, b1, b2, eps = 1e-3, 0.9, 0.999, 1e-7
p = np.array([0.5, -0.3, 0.1, 0.0, 2.0, -1.5], dtype=np.float64)
grads = [
    np.array([0.1, -0.2, 0.0, 1e-4, 3.0, -0.5]),
    np.array([0.05, 0.3, -0.01, 1e-4, -2.0, -0.5]),
    np.array([-0.2, 0.1, 0.02, -1e-3, 1.0, 0.25]),
]
m = np.zeros_like(p)
v = np.zeros_like(p)
for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
    p = p - alpha * m / (np.sqrt(v) + eps)
    print(f"step {t}: {{" + ", ".join(f"{x:.10f}" for x in p) + "}")
