"""PIL + torchvision side of `cargo xtask bench data`: the loader's work on a folder of
images (read, decode, augment, normalize, stack into a batch), timed on one thread, as
`vista bench data` times it. The augmentation is torchvision's nearest match to fastai's
`aug_transforms()` (vista's default): a horizontal flip (p 0.5); with p 0.75 an affine
map (rotation up to 10 degrees, zoom 1.0-1.1) and a perspective warp (0.2); with p 0.75
brightness and contrast changes (0.2); then a resize to the training size, `ToTensor`,
ImageNet normalization, `torch.stack`. Prints one JSON object.

`--write N` first writes N photo-like 150x150 JPEGs (smooth gradients plus noise, so
the encoder and decoder do real work) into the folder, for both sides to read.

Run: `python3 xtask/bench/data.py --folder DIR --size 150 --batch 32 [--write 256]`.
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torchvision.transforms as T
from PIL import Image


def write(folder, n):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:150, 0:150]
    for i in range(n):
        noise = rng.integers(0, 40, size=(150, 150))
        img = np.stack([((x + i) % 256) // 2 + noise, (y * 3 // 2) % 256 + noise, (x + y) // 3 + noise], axis=-1)
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(os.path.join(folder, f"{i:05}.jpg"), quality=90)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--folder", required=True)
    p.add_argument("--size", type=int, default=150)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--write", type=int, default=0)
    a = p.parse_args()
    if a.write:
        write(a.folder, a.write)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    tf = T.Compose([
        T.RandomHorizontalFlip(0.5),
        T.RandomApply([T.RandomAffine(degrees=10, scale=(1.0, 1.1))], p=0.75),
        T.RandomPerspective(distortion_scale=0.2, p=0.75),
        T.RandomApply([T.ColorJitter(brightness=0.2, contrast=0.2)], p=0.75),
        T.Resize((a.size, a.size)),
        T.ToTensor(),
        T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
    ])
    files = sorted(os.path.join(a.folder, f) for f in os.listdir(a.folder))
    files = [f for f in files if os.path.isfile(f)]
    images = 0
    start = time.perf_counter()
    for _ in range(a.rounds):
        for b in range(0, len(files), a.batch):
            batch = torch.stack([tf(Image.open(f).convert("RGB")) for f in files[b:b + a.batch]])
            images += batch.shape[0]
    rate = images / (time.perf_counter() - start)
    print(json.dumps({"framework": f"PIL + torchvision {torch.__version__}", "size": a.size, "batch": a.batch,
                      "threads": 1, "images": images, "img_per_s": round(rate, 1)}), flush=True)


main()
