#!/usr/bin/env python3
"""Builds a folder laid out as ILSVRC-2012 comes, from real photographs, for trying `prepare`.

The photographs bundled with scikit-image and scikit-learn (`pip install scikit-image
scikit-learn pillow`) become the classes, named as synsets (n00000001, ...). Each image is a
crop of 300 to 500 pixels a side (the size of an ImageNet photo; less where a photograph is
smaller) at a random place, maybe mirrored, saved as JPEG. Training crops come from the left 60% of each photograph, validation
crops from the right 40%.

    python3 benchmarks/make_fake_imagenet.py OUT --train 1000 [--val 50] [--classes 10] [--jobs 2]

writes
    OUT/train/<synset>/<synset>_<i>.JPEG
    OUT/val/ILSVRC2012_val_<k>.JPEG                       one flat folder, k from 1
    OUT/ILSVRC2012_validation_ground_truth.txt            one ILSVRC2012_ID per line, as the devkit's
    OUT/synsets.txt                                       line k: the synset of ILSVRC2012_ID k
    OUT/LOC_val_solution.csv                              ImageId,PredictionString, as Kaggle's
As in the real set, one validation image is a CMYK JPEG and one is a PNG named .JPEG.
The devkit numbers its classes in an order of its own, not the synsets' sorted order; here
ILSVRC2012_ID k is the synset of sorted place (k * 7) mod classes, so a reader that confuses
the two orders gets wrong labels.
"""
import argparse
import multiprocessing
import os
import random

import numpy as np
from PIL import Image
from skimage import data as skdata
from sklearn.datasets import load_sample_image

PHOTOS = [
    skdata.astronaut, skdata.chelsea, skdata.coffee, skdata.hubble_deep_field, skdata.retina,
    skdata.immunohistochemistry, lambda: skdata.stereo_motorcycle()[0], skdata.rocket,
    lambda: load_sample_image("china.jpg"), lambda: load_sample_image("flower.jpg"),
]


def crop(photo, left, right, rng):
    h, w = photo.shape[:2]
    x0, x1 = int(left * w), int(right * w)
    ch = rng.randint(min(300, h), min(500, h))
    cw = rng.randint(min(300, x1 - x0), min(500, x1 - x0))
    x, y = rng.randint(x0, x1 - cw), rng.randint(0, h - ch)
    image = photo[y:y + ch, x:x + cw]
    return image[:, ::-1] if rng.random() < 0.5 else image


def write_train(task):
    out, cls, synset, start, count, seed = task
    rng = random.Random(seed * 1_000_003 + cls * 10_007 + start)
    photo = np.asarray(PHOTOS[cls % len(PHOTOS)]())[..., :3]
    folder = os.path.join(out, "train", synset)
    for i in range(start, start + count):
        Image.fromarray(np.ascontiguousarray(crop(photo, 0.0, 0.6, rng))).save(
            os.path.join(folder, f"{synset}_{i}.JPEG"), quality=rng.randint(85, 95))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=100, help="training images in all")
    parser.add_argument("--val", type=int, default=50, help="validation images in all")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=os.cpu_count())
    args = parser.parse_args()
    synsets = [f"n{k + 1:08d}" for k in range(args.classes)]
    for s in synsets:
        os.makedirs(os.path.join(args.out, "train", s), exist_ok=True)
    os.makedirs(os.path.join(args.out, "val"), exist_ok=True)
    per_class = [args.train // args.classes + (1 if k < args.train % args.classes else 0) for k in range(args.classes)]
    tasks = [(args.out, k, synsets[k], start, min(500, per_class[k] - start), args.seed)
             for k in range(args.classes) for start in range(0, per_class[k], 500)]
    with multiprocessing.Pool(args.jobs) as pool:
        pool.map(write_train, tasks)

    rng = random.Random(args.seed)
    devkit_order = [synsets[(k * 7) % args.classes] for k in range(args.classes)]
    if len(set(devkit_order)) != args.classes:  # 7 shares a factor with the class count
        devkit_order = synsets[::-1]
    photos = [np.asarray(load())[..., :3] for load in PHOTOS]
    truth, rows = [], ["ImageId,PredictionString"]
    for k in range(1, args.val + 1):
        cls = rng.randrange(args.classes)
        image = Image.fromarray(np.ascontiguousarray(crop(photos[cls % len(PHOTOS)], 0.6, 1.0, rng)))
        name = f"ILSVRC2012_val_{k:08d}"
        path = os.path.join(args.out, "val", name + ".JPEG")
        if k == 1:
            image.convert("CMYK").save(path, format="JPEG", quality=90)
        elif k == 2:
            image.save(path, format="PNG")
        else:
            image.save(path, quality=rng.randint(85, 95))
        truth.append(str(devkit_order.index(synsets[cls]) + 1))
        rows.append(f"{name},{synsets[cls]} 0 0 10 10")
    with open(os.path.join(args.out, "ILSVRC2012_validation_ground_truth.txt"), "w") as f:
        f.write("\n".join(truth) + "\n")
    with open(os.path.join(args.out, "synsets.txt"), "w") as f:
        f.write("\n".join(devkit_order) + "\n")
    with open(os.path.join(args.out, "LOC_val_solution.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    print(f"wrote {args.train} training images in {args.classes} synset folders and {args.val} validation images to {args.out}")


if __name__ == "__main__":
    main()
