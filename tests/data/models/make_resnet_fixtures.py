"""Regenerates the ResNet parity fixtures of vista-models (Debian's python3-torch).

Run from this folder: `/usr/bin/python3 make_resnet_fixtures.py`. Each model is a narrow
copy of a torchvision ResNet (same module names, fewer channels) with random weights and
random BatchNorm statistics, saved the way real checkpoints are:

- resnet18_w8.pth: ResNet-18 at 1/8 width, plain state_dict, zip format (PyTorch >= 1.6);
- resnet50_w16_places.pth.tar: ResNet-50 at 1/16 width, wrapped like Places365's
  `resnet50_places365.pth.tar` (`{'epoch', 'arch', 'state_dict'}` with DataParallel's
  `module.` prefix) and written in the legacy, pre-zip format;
- resnet18_w8_small.safetensors: ResNet-18 at 1/8 width with the small-image stem.

For each, `<name>.input.f32` holds a fixed input batch and `<name>.logits.f32` PyTorch's
eval-mode logits (little-endian float32); `fixtures.json` gives their shapes.
"""
import json

import torch
import torch.nn as nn
import torchvision

torch.manual_seed(0)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin, planes, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + idt)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin, planes, stride):
        super().__init__()
        out = planes * 4
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + idt)


class ResNet(nn.Module):
    """torchvision.models.ResNet with a width divisor and an optional small stem."""

    def __init__(self, block, layers, classes, div=1, small_stem=False):
        super().__init__()
        planes = [64 // div, 128 // div, 256 // div, 512 // div]
        if small_stem:
            self.conv1 = nn.Conv2d(3, planes[0], 3, 1, 1, bias=False)
        else:
            self.conv1 = nn.Conv2d(3, planes[0], 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(planes[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_stem else nn.MaxPool2d(3, 2, 1)
        cin = planes[0]
        for i, (n, p) in enumerate(zip(layers, planes)):
            blocks = []
            for j in range(n):
                blocks.append(block(cin, p, (1 if i == 0 else 2) if j == 0 else 1))
                cin = p * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def randomize_bn(model):
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.3, 0.3)


# The keys must be torchvision's, so its (and Places365's) checkpoints load.
assert list(ResNet(BasicBlock, [2, 2, 2, 2], 1000).state_dict()) == list(torchvision.models.resnet18().state_dict())
assert list(ResNet(Bottleneck, [3, 4, 6, 3], 1000).state_dict()) == list(torchvision.models.resnet50().state_dict())

shapes = {}


def save_safetensors(tensors, path):
    """The safetensors format by hand (8-byte header length, JSON header, raw data),
    so the script needs nothing beyond Debian's python3-torch."""
    header, blobs, offset = {}, [], 0
    for k, v in tensors.items():
        raw = v.contiguous().numpy().astype("<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        f.writelines(blobs)


def emit(name, model, size):
    randomize_bn(model)
    model.eval()
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        y = model(x)
    x.numpy().astype("<f4").tofile(f"{name}.input.f32")
    y.numpy().astype("<f4").tofile(f"{name}.logits.f32")
    shapes[name] = {"input": list(x.shape), "logits": list(y.shape)}


m = ResNet(BasicBlock, [2, 2, 2, 2], 10, div=8)
emit("resnet18_w8", m, 64)
torch.save(m.state_dict(), "resnet18_w8.pth")

m = ResNet(Bottleneck, [3, 4, 6, 3], 7, div=16)
emit("resnet50_w16_places", m, 64)
wrapped = {"module." + k: v for k, v in m.state_dict().items()}
torch.save({"epoch": 90, "arch": "resnet50", "state_dict": wrapped, "best_prec1": 54.7},
           "resnet50_w16_places.pth.tar", _use_new_zipfile_serialization=False)

m = ResNet(BasicBlock, [2, 2, 2, 2], 10, div=8, small_stem=True)
emit("resnet18_w8_small", m, 28)
save_safetensors({k: v for k, v in m.state_dict().items() if v.dtype == torch.float32},
                 "resnet18_w8_small.safetensors")

json.dump(shapes, open("fixtures.json", "w"), indent=1)
