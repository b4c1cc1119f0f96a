#!/usr/bin/env python3
"""The plain-PyTorch anchor of bench:gpu, measured on the same GPU in the same session.

The paper's configuration (CSNN-128, T = 4, batch 128, a 20,000-image Fashion-MNIST training subset, SGD lr 0.1
momentum 0.9, ikun_v1 initialisation, MSE on the firing rate, ATan(2) surrogate, IF neurons with hard reset) written as a PyTorch user
writes it without SpikingJelly: stateless layers on T*N samples at once, the IF neuron a Python loop over T with
the surrogate as an autograd.Function. The issue's reference figure for such a loop is 1.25 s per training epoch
on an H200 (SpikingJelly's cupy backend: 1.19 s); measuring it here gives bench:gpu's ratios an anchor taken on
the very GPU the ikun figures come from.

Epoch 1 warms cuDNN and the caching allocator up; epoch 2 is the one timed (CUDA-synchronised wall clock), as
bench:gpu does. The data sit on the GPU (shuffled there), as ikun's do, so both time the same work.

Usage: python3 bench/torch-anchor.py [--data DIR] [--precision default|tf32|fp32] [--epochs N] [--json FILE]
  --data       folder with the Fashion-MNIST IDX files (.gz or not); default $IKUN_DATA, then
               /usr/share/datasets/fashion-mnist
  --precision  default: PyTorch's defaults (TF32 convolutions, fp32 matrix products), tf32: both on TF32,
               fp32: neither
Exits 0 with a message where there is no PyTorch or no CUDA GPU (nothing to measure), 2 on bad flags or data.
"""
import argparse
import gzip
import json
import math
import os
import struct
import sys
import time


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=os.environ.get("IKUN_DATA") or "/usr/share/datasets/fashion-mnist")
    p.add_argument("--precision", choices=["default", "tf32", "fp32"], default="default")
    p.add_argument("--epochs", type=int, default=2, help="epochs to run; the last is the one reported (default 2)")
    p.add_argument("--json", help="also write the figures to this file as JSON")
    p.add_argument("--smoke", action="store_true",
                   help="a tiny run (CSNN-4, 512 training and 256 test images), on the CPU where there is no GPU: for tests")
    args = p.parse_args(argv)
    if args.epochs < 1:
        p.error("--epochs must be at least 1")
    return args


def read_idx(folder, stem):
    """An IDX file (stem or stem.gz in folder) as (dims, raw bytes)."""
    for name in (stem, stem + ".gz"):
        path = os.path.join(folder, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith(".gz") else open
            with opener(path, "rb") as f:
                raw = f.read()
            break
    else:
        raise FileNotFoundError(f"no {stem}[.gz] in {folder}: pass --data DIR or set IKUN_DATA "
                                "(Debian: apt-get install dataset-fashion-mnist)")
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{stem} in {folder} is not an unsigned-byte IDX file")
    rank = raw[3]
    dims = struct.unpack(">" + "I" * rank, raw[4:4 + 4 * rank])
    body = raw[4 + 4 * rank:]
    if len(body) != math.prod(dims):
        raise ValueError(f"{stem} in {folder} holds {len(body)} bytes of data, its header says {math.prod(dims)}")
    return dims, body


def load_split(torch, folder, prefix, device):
    dims, pixels = read_idx(folder, f"{prefix}-images-idx3-ubyte")
    ldims, labels = read_idx(folder, f"{prefix}-labels-idx1-ubyte")
    if len(dims) != 3 or ldims[0] != dims[0]:
        raise ValueError(f"{prefix} images {dims} and labels {ldims} in {folder} do not match")
    x = torch.frombuffer(bytearray(pixels), dtype=torch.uint8).view(dims[0], 1, dims[1], dims[2])
    y = torch.frombuffer(bytearray(labels), dtype=torch.uint8).long()
    return x.to(device).float().div_(255.0), y.to(device)


def pick_subset(torch, available, count, gen, device):
    """count indices of a seeded permutation of the training images, cycled where there are fewer (a sample)."""
    order = torch.randperm(available, device=device, generator=gen)
    return order[torch.arange(count, device=device) % available]


def build(torch):
    nn = torch.nn

    class ATanSpike(torch.autograd.Function):
        """H(x) forward; the ATan(alpha = 2) surrogate's derivative (alpha/2) / (1 + (pi/2 alpha x)^2) backward."""

        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x >= 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            alpha = 2.0
            return grad * (alpha / 2) / (1 + (math.pi / 2 * alpha * x) ** 2)

    class IFNode(nn.Module):
        """Multi-step IF over [T * N, ...]: h = v + x[t], s = H(h - 1), v = h (1 - s) (v_reset 0, reset not detached)."""

        def __init__(self, T):
            super().__init__()
            self.T = T

        def forward(self, x):
            xs = x.view(self.T, -1, *x.shape[1:])
            v = torch.zeros_like(xs[0])
            spikes = []
            for t in range(self.T):
                h = v + xs[t]
                s = ATanSpike.apply(h - 1.0)
                v = h * (1 - s)
                spikes.append(s)
            return torch.stack(spikes).flatten(0, 1)

    class CSNN(nn.Module):
        def __init__(self, c, T):
            super().__init__()
            self.T = T
            self.features = nn.Sequential(
                nn.Conv2d(1, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), IFNode(T), nn.MaxPool2d(2),
                nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), IFNode(T), nn.MaxPool2d(2),
                nn.Flatten(), nn.Linear(49 * c, 16 * c, bias=False), IFNode(T), nn.Linear(16 * c, 10, bias=False), IFNode(T))

        def forward(self, images):
            n = images.shape[0]
            x = images.unsqueeze(0).expand(self.T, *images.shape).flatten(0, 1)  # direct encoding
            return self.features(x).view(self.T, n, 10).mean(0)

    return CSNN


def main(argv):
    args = parse_args(argv)
    try:
        import torch
    except ImportError:
        print("torch-anchor: PyTorch is not installed here; nothing to measure.")
        return 0
    gpu = torch.cuda.is_available()
    if not gpu and not args.smoke:
        print("torch-anchor: PyTorch sees no CUDA GPU here; nothing to measure (--smoke runs a tiny check on the CPU).")
        return 0
    conv_tf32, matmul_tf32 = args.precision != "fp32", args.precision == "tf32"
    try:  # PyTorch 2.9 on: fp32_precision; the allow_tf32 flags are deprecated there
        torch.backends.cudnn.conv.fp32_precision = "tf32" if conv_tf32 else "ieee"
        torch.backends.cuda.matmul.fp32_precision = "tf32" if matmul_tf32 else "ieee"
    except (AttributeError, RuntimeError):
        torch.backends.cudnn.allow_tf32 = conv_tf32
        torch.backends.cuda.matmul.allow_tf32 = matmul_tf32
    torch.backends.cudnn.benchmark = True
    device = torch.device("cuda" if gpu else "cpu")
    sync = torch.cuda.synchronize if gpu else (lambda: None)
    c, T, batch, epochs = (4, 4, 128, 64) if args.smoke else (128, 4, 128, 64)
    train_count, test_count = (512, 256) if args.smoke else (20_000, None)
    try:
        train_x, train_y = load_split(torch, args.data, "train", device)
        test_x, test_y = load_split(torch, args.data, "t10k", device)
    except (OSError, ValueError) as error:
        print(f"torch-anchor: {error}", file=sys.stderr)
        return 2
    gen = torch.Generator(device=device).manual_seed(42)
    subset, source = pick_subset(torch, train_x.shape[0], train_count, gen, device), args.data
    if train_x.shape[0] < train_count:
        source += f" ({train_x.shape[0]} training images, cycled to {train_count:,})"
    train_x, train_y = train_x[subset].contiguous(), train_y[subset].contiguous()
    test_x, test_y = test_x[:test_count], test_y[:test_count]
    torch.manual_seed(42)
    model = build(torch)(c, T).to(device)
    with torch.no_grad():  # ikun_v1 (beta mode "code"): Normal(0, sqrt(beta / fan_in)) on conv and linear weights
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.normal_(0.0, math.sqrt(1.273703 / m.weight[0].numel()))
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    steps = train_x.shape[0] // batch  # the last partial batch dropped: 156 steps

    def train_epoch():
        model.train()
        order = torch.randperm(train_x.shape[0], device=device, generator=gen)
        correct = torch.zeros((), device=device)
        for s in range(steps):
            idx = order[s * batch:(s + 1) * batch]
            x, y = train_x[idx], train_y[idx]
            rate = model(x)
            loss = torch.nn.functional.mse_loss(rate, torch.nn.functional.one_hot(y, 10).float())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            correct += (rate.argmax(1) == y).sum()
        sched.step()
        return correct

    @torch.no_grad()
    def test_pass():
        model.eval()
        correct = torch.zeros((), device=device)
        for s in range(0, test_x.shape[0], batch):
            rate = model(test_x[s:s + batch])
            correct += (rate.argmax(1) == test_y[s:s + batch]).sum()
        return correct

    if gpu:
        torch.cuda.reset_peak_memory_stats()
    rows = []
    for epoch in range(1, args.epochs + 1):
        sync()
        t0 = time.perf_counter()
        train_correct = train_epoch()
        sync()
        t1 = time.perf_counter()
        test_correct = test_pass()
        sync()
        t2 = time.perf_counter()
        rows.append({"epoch": epoch, "train_s": t1 - t0, "test_s": t2 - t1,
                     "train_acc": float(train_correct) / (steps * batch), "test_acc": float(test_correct) / test_x.shape[0]})
    last = rows[-1]
    figures = {
        "gpu": torch.cuda.get_device_name(0) if gpu else "none (CPU smoke run)", "torch": torch.__version__, "precision": args.precision,
        "parameters": params, "epoch_s": last["train_s"], "samples_per_s": steps * batch / last["train_s"],
        "test_s": last["test_s"], "peak_gb": torch.cuda.max_memory_allocated() / 1e9 if gpu else 0.0, "epochs": rows,
    }
    print(f"torch-anchor on {figures['gpu']} (PyTorch {figures['torch']}), plain PyTorch CSNN-{c} ({params:,} parameters), "
          f"T={T}, batch {batch}, SGD, precision {args.precision}; epoch {last['epoch']} of {args.epochs} timed; data: {source}")
    table = [
        ("training epoch (s)", f"{figures['epoch_s']:.3f}", "1.25"),
        ("samples/s", f"{figures['samples_per_s']:.0f}", ""),
        (f"test pass over {test_x.shape[0]} images (s)", f"{figures['test_s']:.3f}", ""),
        ("peak device memory (GB)", f"{figures['peak_gb']:.2f}", ""),
        ("train / test accuracy of that epoch", f"{last['train_acc']:.3f} / {last['test_acc']:.3f}", ""),
    ]
    w = max(len(r[0]) for r in table)
    print(f"{'metric'.ljust(w)} | {'this run':>13} | plain PyTorch, reference H200")
    print(f"{'-' * w}-|-{'-' * 13}-|-{'-' * 29}")
    for name, value, ref in table:
        print(f"{name.ljust(w)} | {value:>13} | {ref}")
    if args.json:
        with open(args.json + ".tmp", "w") as f:
            json.dump(figures, f, indent=2)
        os.replace(args.json + ".tmp", args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
