#!/usr/bin/env python3
"""Check an exported model in PyTorch: build it with the code `export --print-pytorch` printed,
load the file with strict=True, and report Fashion-MNIST test top-1 and top-5, to set against
`alexnet-split eval` on the same checkpoint.

    alexnet-split export --checkpoint RUN --out model.safetensors --print-pytorch | tail -n +2 > model.py
    python3 benchmarks/export_in_pytorch.py model.py      # needs torch, numpy and safetensors (pip)
"""
import gzip
import sys

import numpy as np
import torch
import torch.nn.functional as F

DATA = "/usr/share/datasets/fashion-mnist"


def idx(path, offset):
    return np.frombuffer(gzip.open(path).read(), np.uint8, offset=offset)


def main():
    namespace = {}
    exec(open(sys.argv[1]).read(), namespace)  # defines model, INPUT_SIZE, PIXEL_MEAN, PIXEL_STD
    model, (channels, height, width) = namespace["model"], namespace["INPUT_SIZE"]
    images = torch.tensor(idx(f"{DATA}/t10k-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).astype(np.float32))
    labels = torch.tensor(idx(f"{DATA}/t10k-labels-idx1-ubyte.gz", 8).astype(np.int64))
    x = F.interpolate(images, size=(height, width), mode="bilinear", align_corners=False)
    x = ((x / 255 - namespace["PIXEL_MEAN"]) / namespace["PIXEL_STD"]).expand(-1, channels, -1, -1)
    with torch.inference_mode():
        logits = torch.cat([model(x[i:i + 500]) for i in range(0, len(x), 500)])
    top1 = (logits.argmax(1) == labels).float().mean() * 100
    top5 = (logits.topk(5, 1).indices == labels[:, None]).any(1).float().mean() * 100
    print(f"pytorch {torch.__version__}: test top-1 {top1:.2f}%, top-5 {top5:.2f}% ({len(labels)} images)")


if __name__ == "__main__":
    main()
