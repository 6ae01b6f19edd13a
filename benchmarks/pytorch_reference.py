#!/usr/bin/env python3
"""PyTorch reference benchmark for the alexnet-split models (CPU only).

Builds the same networks as the Swift tool (presets paper, d2l, small; models split,
unsplit, paper-1gpu; see docs/models.md and docs/architecture.md) as ordinary one-process PyTorch
modules, and times training steps (and, with --inference, forward passes) on random data,
so the Swift numbers can be quoted next to PyTorch's. The split model is the two-tower
net in one module: grouped convolutions (groups=2) where a layer reads only its own
tower, and LRN applied to each tower's half of the channels separately.

How to install (torch is needed only here; nothing the tests run imports it):

    # CPU-only build, no CUDA libraries. On this project's machines pip is configured
    # with find-links=/opt/wheels, which holds torch-2.13.0+cpu (183 MiB, already on
    # disk); pip fetches only the small pure-Python dependencies from PyPI:
    pip install 'torch==2.13.0+cpu'

    # Anywhere else, from PyPI alone: the Linux x86_64 wheel is the CUDA build (539 MB)
    # and pulls the nvidia-*/cuda-toolkit wheels (several GB) that its libraries link
    # against; it runs on CPU all the same. `pip install --no-deps torch` does NOT work:
    # `import torch` fails looking for libcublasLt.
    pip install torch

Usage:

    python3 benchmarks/pytorch_reference.py --preset paper --model split \\
        --batch-size 128 --steps 20 --warmup 3 --threads 2
    python3 benchmarks/pytorch_reference.py --preset small --model unsplit --inference --json
    python3 benchmarks/pytorch_reference.py --check-shapes   # every preset x model
    python3 benchmarks/pytorch_reference.py --preset d2l --model unsplit --layers

Timing: every step is timed with time.perf_counter; the median, min and max img/s over
the measured steps are reported. GFLOP/s counts forward multiply-adds as 2 FLOPs
(conv: 2*Cout*(Cin/groups)*k*k*Hout*Wout, linear: 2*in*out; bias, ReLU, LRN, pooling and
dropout not counted), with a training step counted as 3x the forward pass.
"""

import argparse
import json
import statistics
import sys
import time
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

# Paper constants: b = a / (k + alpha * sum_{n channels} a^2)^beta, k=2, n=5,
# alpha=1e-4, beta=0.75. PyTorch divides its alpha by n, hence alpha=5e-4 here.
LRN_SIZE, LRN_ALPHA, LRN_BETA, LRN_K = 5, 5e-4, 0.75, 2.0

# Each conv: (kernels total, kernel, stride, pad, LRN after ReLU, max-pool 3/2 after).
# Tower connectivity is fixed by position: conv2, conv4, conv5 read their own tower.
PRESETS = {
    "paper": {
        "input": (3, 227, 227),
        "convs": [(96, 11, 4, 0, True, True), (256, 5, 1, 2, True, True),
                  (384, 3, 1, 1, False, False), (384, 3, 1, 1, False, False),
                  (256, 3, 1, 1, False, True)],
        "fc": 4096,
        "flatten": 9216,
    },
    "d2l": {
        "input": (1, 224, 224),
        "convs": [(96, 11, 4, 1, False, True), (256, 5, 1, 2, False, True),
                  (384, 3, 1, 1, False, False), (384, 3, 1, 1, False, False),
                  (256, 3, 1, 1, False, True)],
        "fc": 4096,
        "flatten": 6400,
    },
    "small": {
        "input": (1, 32, 32),
        "convs": [(24, 5, 1, 2, True, True), (64, 5, 1, 2, True, True),
                  (96, 3, 1, 1, False, False), (96, 3, 1, 1, False, False),
                  (64, 3, 1, 1, False, True)],
        "fc": 1024,
        "flatten": 576,
    },
}
MODELS = ("split", "unsplit", "paper-1gpu")
OWN_TOWER = {2, 4, 5}  # conv layers that read only their own tower in the split model


class TowerLRN(nn.Module):
    """LRN whose channel window stays inside each tower (half of the channels)."""

    def __init__(self, towers=2):
        super().__init__()
        self.towers = towers
        self.lrn = nn.LocalResponseNorm(LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)

    def forward(self, x):
        return torch.cat([self.lrn(t) for t in x.chunk(self.towers, dim=1)], dim=1)


def build_model(preset, model, classes):
    """nn.Sequential with named layers conv1, relu1, lrn1, pool1, ..., fc8."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}")
    spec = PRESETS[preset]
    layers = OrderedDict()
    cin, h, w = spec["input"]
    for i, (cout, k, s, p, lrn, pool) in enumerate(spec["convs"], start=1):
        if model == "paper-1gpu" and i <= 4:
            cout //= 2  # one tower: half the kernels in conv1..conv4
        groups = 2 if model == "split" and i in OWN_TOWER else 1
        layers[f"conv{i}"] = nn.Conv2d(cin, cout, k, stride=s, padding=p, groups=groups)
        layers[f"relu{i}"] = nn.ReLU(inplace=True)
        if lrn:
            layers[f"lrn{i}"] = TowerLRN(2) if model == "split" else nn.LocalResponseNorm(
                LRN_SIZE, alpha=LRN_ALPHA, beta=LRN_BETA, k=LRN_K)
        if pool:
            layers[f"pool{i}"] = nn.MaxPool2d(3, stride=2)
        cin = cout
    layers["flatten"] = nn.Flatten()
    fc, fin = spec["fc"], spec["flatten"]
    for i in (6, 7):
        layers[f"fc{i}"] = nn.Linear(fin, fc)
        layers[f"relu{i}"] = nn.ReLU(inplace=True)
        layers[f"drop{i}"] = nn.Dropout(0.5)
        fin = fc
    layers["fc8"] = nn.Linear(fin, classes)
    return nn.Sequential(layers)


def trace_shapes(net, preset):
    """One-image forward, layer by layer: [(name, output shape without batch)],
    forward FLOPs per image, and the flatten size (asserted against the preset)."""
    x = torch.zeros(1, *PRESETS[preset]["input"])
    shapes, flops = [], 0
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for name, layer in net.named_children():
            y = layer(x)
            if isinstance(layer, nn.Conv2d):
                k = layer.kernel_size[0] * layer.kernel_size[1]
                flops += 2 * layer.out_channels * (layer.in_channels // layer.groups) * k \
                    * y.shape[2] * y.shape[3]
            elif isinstance(layer, nn.Linear):
                flops += 2 * layer.in_features * layer.out_features
            shapes.append((name, tuple(y.shape[1:])))
            x = y
    net.train(was_training)
    flatten = dict(shapes)["flatten"][0]
    expected = PRESETS[preset]["flatten"]
    assert flatten == expected, f"{preset}: flatten size {flatten}, expected {expected}"
    return shapes, flops, flatten


def time_steps(step, steps, warmup, batch):
    for _ in range(warmup):
        step()
    rates = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        rates.append(batch / (time.perf_counter() - t0))
    return {"img_per_s_median": statistics.median(rates), "img_per_s_min": min(rates),
            "img_per_s_max": max(rates)}


def bench_train(net, x, y, steps, warmup):
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    last = {}

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        last["loss"] = loss.item()

    result = time_steps(step, steps, warmup, x.shape[0])
    result["last_loss"] = last["loss"]
    return result


def bench_inference(net, x, steps, warmup):
    net.eval()
    with torch.inference_mode():
        return time_steps(lambda: net(x), steps, warmup, x.shape[0])


def check_all_shapes(classes):
    ok = True
    for preset in PRESETS:
        for model in MODELS:
            net = build_model(preset, model, classes)
            try:
                shapes, flops, flatten = trace_shapes(net, preset)
                print(f"{preset}/{model}: flatten {flatten}, logits {shapes[-1][1]}, "
                      f"forward {flops / 1e9:.4f} GFLOP/image, "
                      f"{sum(p.numel() for p in net.parameters())} parameters")
            except AssertionError as e:
                ok = False
                print(f"{preset}/{model}: FAILED: {e}")
    return ok


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", choices=list(PRESETS), default="paper")
    ap.add_argument("--model", choices=MODELS, default="split")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20, help="measured steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--inference", action="store_true",
                    help="also time forward passes (eval mode, inference_mode)")
    ap.add_argument("--json", action="store_true", help="print one JSON object only")
    ap.add_argument("--layers", action="store_true",
                    help="print each layer's output shape before timing")
    ap.add_argument("--check-shapes", action="store_true",
                    help="check the flatten size of every preset x model, then exit")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.warmup < 0 or args.batch_size < 1 or args.classes < 1:
        ap.error("need --steps >= 1, --warmup >= 0, --batch-size >= 1, --classes >= 1")

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.check_shapes:
        return 0 if check_all_shapes(args.classes) else 1

    net = build_model(args.preset, args.model, args.classes)
    shapes, fwd_flops, flatten = trace_shapes(net, args.preset)
    name = f"{args.preset}/{args.model}"
    if not args.json:
        if args.layers:
            for layer, shape in shapes:
                print(f"  {layer:8s} {'x'.join(map(str, shape))}")
        c, h, w = PRESETS[args.preset]["input"]
        print(f"{name}: input {c}x{h}x{w}, flatten {flatten} (shape check ok), "
              f"{args.classes} classes, forward {fwd_flops / 1e9:.4f} GFLOP/image")

    x = torch.randn(args.batch_size, *PRESETS[args.preset]["input"])
    y = torch.randint(0, args.classes, (args.batch_size,))
    results = {"train": bench_train(net, x, y, args.steps, args.warmup)}
    if args.inference:
        results["inference"] = bench_inference(net, x, args.steps, args.warmup)
    for mode, r in results.items():
        mult = 3 if mode == "train" else 1
        r["gflop_per_s"] = r["img_per_s_median"] * mult * fwd_flops / 1e9

    threads = torch.get_num_threads()
    if args.json:
        out = {"framework": "pytorch", "torch_version": torch.__version__,
               "cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "preset": args.preset, "model": args.model, "classes": args.classes,
               "batch_size": args.batch_size, "threads": threads, "steps": args.steps,
               "warmup": args.warmup, "seed": args.seed, "flatten": flatten,
               "forward_gflop_per_image": fwd_flops / 1e9, **results}
        print(json.dumps(out))
    else:
        for mode, r in results.items():
            print(f"pytorch {torch.__version__} {name} batch {args.batch_size}, "
                  f"{threads} thread{'s' if threads != 1 else ''}: {mode} "
                  f"{r['img_per_s_median']:.1f} img/s median (min {r['img_per_s_min']:.1f}, "
                  f"max {r['img_per_s_max']:.1f}) over {args.steps} steps, "
                  f"{r['gflop_per_s']:.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
