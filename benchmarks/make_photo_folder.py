#!/usr/bin/env python3
"""Builds a small ImageNet-style folder of colour photographs for trying the photo pipeline.

Ten real photographs ship with scikit-image and scikit-learn (`pip install scikit-image
scikit-learn pillow`). Each becomes a class; its images are crops of random size and place,
saved as JPEG (and a few PNG) at random sizes and qualities. Training crops come from the left
60% of each photograph and test crops from the right 40%, so the test images show parts of the
scene that training never saw.

    python3 benchmarks/make_photo_folder.py OUT [--train 150] [--val 40] [--seed 1] [--classes 10]

writes OUT/train/<class>/*.jpg and OUT/val/<class>/*.jpg (--classes N keeps the first N
photographs, e.g. 5 for an odd class count).
"""
import argparse
import os
import random

import numpy as np
from PIL import Image
from skimage import data as skdata
from sklearn.datasets import load_sample_image

PHOTOS = {
    "astronaut": skdata.astronaut,
    "cat": skdata.chelsea,
    "coffee": skdata.coffee,
    "galaxies": skdata.hubble_deep_field,
    "retina": skdata.retina,
    "tissue": skdata.immunohistochemistry,
    "motorcycle": lambda: skdata.stereo_motorcycle()[0],
    "rocket": skdata.rocket,
    "temple": lambda: load_sample_image("china.jpg"),
    "flower": lambda: load_sample_image("flower.jpg"),
}


def crops(photo, count, left, right, rng, folder, name):
    h, w = photo.shape[:2]
    x0, x1 = int(left * w), int(right * w)
    for i in range(count):
        side = int(rng.uniform(0.15, 0.35) * min(h, w))
        side = min(side, x1 - x0, h)
        x = rng.randint(x0, x1 - side)
        y = rng.randint(0, h - side)
        out = rng.randint(48, 96)
        image = Image.fromarray(photo[y:y + side, x:x + side]).resize((out, out), Image.BILINEAR)
        if i % 10 == 9:
            image.save(os.path.join(folder, f"{name}-{i:04d}.png"))
        else:
            image.save(os.path.join(folder, f"{name}-{i:04d}.jpg"), quality=rng.randint(75, 95))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=150)
    parser.add_argument("--val", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--classes", type=int, default=len(PHOTOS), choices=range(2, len(PHOTOS) + 1))
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for name, load in list(PHOTOS.items())[:args.classes]:
        photo = np.asarray(load())[..., :3]
        for split, count, left, right in [("train", args.train, 0.0, 0.6), ("val", args.val, 0.6, 1.0)]:
            folder = os.path.join(args.out, split, name)
            os.makedirs(folder, exist_ok=True)
            crops(photo, count, left, right, rng, folder, name)
    print(f"wrote {args.classes} classes, {args.train} training and {args.val} test images each, to {args.out}")


if __name__ == "__main__":
    main()
