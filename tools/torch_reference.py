#!/usr/bin/python3
"""PyTorch reference: the default model (or, with --model convnet, Keras'
mnist_convnet) trained with the engine's Keras semantics, timed the same way,
for the side-by-side speed comparison.

The conv net runs channels-last (PyTorch's fastest layout for oneDNN on the
CPU, measured faster here than the default), on the first --samples images of
the training part, as trainer-bench --model convnet does.

784-128-32-10 with ReLU, glorot-uniform weights and zero biases, softmax fused
with the cross-entropy, Adam (lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-7; note
that PyTorch adds eps to the bias-corrected sqrt(v), Keras to sqrt(v)), batch 32
with the last partial batch kept, the last 20% of the training file held out
for validation, the training part reshuffled every epoch.  The data sits in
memory as one float32 tensor, batches are taken by indexing it: the fastest
plain PyTorch loop, with no DataLoader overhead.

Prints one line: samples_per_s (median over the timed epochs, the first one not
counted), seconds_per_epoch, and the validation accuracy after the last epoch.
Needs Debian's python3-torch, python3-numpy and, for a fair figure,
libopenblas0-pthread (without it PyTorch uses the slow reference BLAS); not a
dependency of the engine.
"""
import argparse
import gzip
import os
import time

import numpy as np
import torch


def read_idx(directory, name):
    for path in (os.path.join(directory, name), os.path.join(directory, name + ".gz")):
        if os.path.exists(path):
            with open(path, "rb") as f:
                data = f.read()
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            ndim = data[3]
            dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
            return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise SystemExit(f"torch_reference: {name} not found in {directory}")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join(here, "..", "data", "mnist"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", choices=["mlp", "convnet"], default="mlp")
    ap.add_argument("--samples", type=int, default=0,
                    help="train on the first N images of the training part (0: all)")
    args = ap.parse_args()
    convnet = args.model == "convnet"

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x = read_idx(args.data, "train-images-idx3-ubyte").reshape(-1, 784)
    y = read_idx(args.data, "train-labels-idx1-ubyte")
    split = int(len(x) * (1 - 0.2))
    end = min(split, args.samples) if args.samples else split
    x_train = torch.from_numpy(x[:end].astype(np.float32) / 255.0)
    y_train = torch.from_numpy(y[:end].astype(np.int64))
    x_val = torch.from_numpy(x[split:].astype(np.float32) / 255.0)
    y_val = torch.from_numpy(y[split:].astype(np.int64))

    if convnet:
        layout = torch.channels_last
        x_train = x_train.reshape(-1, 1, 28, 28).contiguous(memory_format=layout)
        x_val = x_val.reshape(-1, 1, 28, 28).contiguous(memory_format=layout)
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Dropout(0.5), torch.nn.Linear(1600, 10))
        model = model.to(memory_format=layout)
    else:
        model = torch.nn.Sequential(
            torch.nn.Linear(784, 128), torch.nn.ReLU(),
            torch.nn.Linear(128, 32), torch.nn.ReLU(),
            torch.nn.Linear(32, 10))
    for layer in model:
        if isinstance(layer, (torch.nn.Linear, torch.nn.Conv2d)):
            torch.nn.init.xavier_uniform_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    # foreach: PyTorch's multi-tensor Adam, 30% faster per step than its default.
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7,
                           foreach=True)
    loss_fn = torch.nn.CrossEntropyLoss()

    times = []
    n = len(x_train)
    for epoch in range(args.epochs + 1):
        t0 = time.perf_counter()
        order = torch.randperm(n)
        for start in range(0, n, args.batch_size):
            idx = order[start:start + args.batch_size]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x_train[idx]), y_train[idx])
            loss.backward()
            opt.step()
        if epoch > 0:  # the first epoch warms up, as in trainer-bench
            times.append(time.perf_counter() - t0)
    model.eval()
    with torch.no_grad():
        val_acc = (model(x_val).argmax(1) == y_val).float().mean().item()
    sec = float(np.median(times))
    print(f"samples_per_s {n / sec:.0f} seconds_per_epoch {sec:.4f} val_accuracy {val_acc:.4f}")


if __name__ == "__main__":
    main()
