"""PyTorch side of `cargo xtask bench models`: training-step throughput (forward,
cross-entropy, backward, SGD step with momentum 0.9 and weight decay 0.01) or inference
throughput (`--mode infer`: forward under `torch.inference_mode()`) of the architectures
vista implements, measured exactly as `vista bench models` measures them (random input,
one warm-up step, then timed steps), printed as one JSON object per line with the
process's peak resident memory.

Run: `python3 xtask/bench/models.py --sizes 64,128 --batch 32 --steps 3` (Debian's
python3-torch and python3-torchvision, or a virtual environment with PyTorch from PyPI;
`cargo xtask bench models` runs both).
"""
import argparse
import json
import os
import resource
import sys
import time

import torch
import torch.nn as nn
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data", "models"))


def efficientnet_lite0(classes):
    # The reference implementation that checks vista's EfficientNet-Lite0 parity; only
    # its class definitions are needed, so the module's fixture-writing code is skipped.
    path = os.path.join(sys.path[0], "make_efficientnet_fixtures.py")
    src = open(path).read()
    scope = {"__file__": path}
    exec(src.split("model = Lite0().eval()")[0], scope)
    m = scope["Lite0"]()
    m._fc = nn.Linear(1280, classes)
    return m


def scaled_resnet(name, width, small_stem):
    # vista's ResNet with a channel multiplier and the small-image stem: torchvision's
    # blocks, every stage's planes scaled by `width` (rounded, at least 1).
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet

    block, layers = {"resnet18": (BasicBlock, [2, 2, 2, 2]), "resnet50": (Bottleneck, [3, 4, 6, 3])}[name]
    planes = [max(1, round(p * width)) for p in (64, 128, 256, 512)]
    m = ResNet(block, layers, num_classes=10)
    m.inplanes = planes[0]
    m.conv1 = nn.Conv2d(3, planes[0], 3, 1, 1, bias=False) if small_stem else nn.Conv2d(3, planes[0], 7, 2, 3, bias=False)
    m.bn1 = nn.BatchNorm2d(planes[0])
    if small_stem:
        m.maxpool = nn.Identity()
    m.layer1 = m._make_layer(block, planes[0], layers[0])
    m.layer2 = m._make_layer(block, planes[1], layers[1], stride=2)
    m.layer3 = m._make_layer(block, planes[2], layers[2], stride=2)
    m.layer4 = m._make_layer(block, planes[3], layers[3], stride=2)
    m.fc = nn.Linear(planes[3] * block.expansion, 10)
    return m


def build(name, width=1.0, small_stem=False):
    if (width != 1.0 or small_stem) and name in ("resnet18", "resnet50"):
        return scaled_resnet(name, width, small_stem)
    if width != 1.0 or small_stem:
        raise SystemExit(f"--width and --small-stem apply to the ResNets, not {name}")
    if name == "resnet18":
        return torchvision.models.resnet18(num_classes=10)
    if name == "resnet50":
        return torchvision.models.resnet50(num_classes=10)
    if name == "inception_v3":
        return torchvision.models.inception_v3(num_classes=10, aux_logits=False, init_weights=False)
    if name == "efficientnet_lite0":
        return efficientnet_lite0(10)
    raise SystemExit(f"unknown model {name}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="resnet18,resnet50,inception_v3,efficientnet_lite0")
    p.add_argument("--sizes", default="64,128")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--mode", choices=["train", "infer"], default="train")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--small-stem", action="store_true")
    # Every core, as vista uses them: Debian's torch starts with one thread here.
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for name in a.models.split(","):
        for size in map(int, a.sizes.split(",")):
            rate = None
            if not (name == "inception_v3" and size < 75):
                model = build(name, a.width, a.small_stem)
                x = torch.randn(a.batch, 3, size, size)
                if a.mode == "infer":
                    model.eval()

                    def step():
                        with torch.inference_mode():
                            model(x)
                else:
                    model.train()
                    y = torch.arange(a.batch) % 10
                    loss = nn.CrossEntropyLoss()
                    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=0.01)

                    def step():
                        opt.zero_grad(set_to_none=True)
                        loss(model(x), y).backward()
                        opt.step()

                step()
                start = time.perf_counter()
                for _ in range(a.steps):
                    step()
                rate = a.steps * a.batch / (time.perf_counter() - start)
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(json.dumps({"model": name, "size": size, "batch": a.batch, "backend": f"torch {torch.__version__}",
                              "img_per_s": None if rate is None else round(rate, 2), "mode": a.mode,
                              "width": a.width, "small_stem": a.small_stem,
                              "threads": torch.get_num_threads(), "peak_rss_mib": round(peak, 1)}), flush=True)


main()
