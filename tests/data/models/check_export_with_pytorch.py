"""Checks `vista export` against PyTorch: the exported file loads into torchvision's
ResNet-18 (only the `num_batches_tracked` counters are absent) and gives the
probabilities `vista predict` wrote, within 1e-4.

    vista train --data DATA --out run --arch resnet18 --width 1 --small-stem false ...
    vista export --run run --out m.safetensors
    vista predict --run run IMAGE --out p.csv
    python3 check_export_with_pytorch.py m.safetensors m.json IMAGE p.csv

IMAGE must be the run's input size already (no resizing on either side). Needs torch,
torchvision, numpy and PIL (Debian's python3-torch, python3-torchvision).
"""

import json
import struct
import sys

import numpy as np
import torch
import torchvision
from PIL import Image


def load_safetensors(path):
    data = open(path, "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = {}
    for key, v in header.items():
        if key == "__metadata__":
            continue
        assert v["dtype"] == "F32", v["dtype"]
        start, end = v["data_offsets"]
        values = np.frombuffer(body[start:end], dtype="<f4").copy()
        out[key] = torch.from_numpy(values.reshape(v["shape"]))
    return out


def main(weights, info_path, image, preds):
    info = json.load(open(info_path))
    model = torchvision.models.resnet18(num_classes=len(info["classes"]))
    missing, unexpected = model.load_state_dict(load_safetensors(weights), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    assert not missing and not unexpected, (missing, unexpected)
    model.eval()
    x = np.asarray(Image.open(image).convert("RGB"), dtype=np.float32) / 255
    norm = info["normalize"]
    x = (x - np.array(norm["mean"], dtype=np.float32)) / np.array(norm["std"], dtype=np.float32)
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(x).permute(2, 0, 1)[None]), 1)[0].numpy()
    # The probability columns are named by the classes (the rank columns by the rank).
    lines = open(preds).read().splitlines()
    head, row = lines[0].split(","), lines[1].split(",")
    vista = np.array([float(row[head.index(c)]) for c in info["classes"]])
    diff = float(np.abs(probs - vista).max())
    print(f"torch {probs}, vista {vista}, largest difference {diff:.2e}")
    assert diff < 1e-4


if __name__ == "__main__":
    main(*sys.argv[1:])
