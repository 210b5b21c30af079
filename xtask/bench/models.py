"""PyTorch side of `cargo xtask bench models`: training-step throughput (forward,
cross-entropy, backward) of the architectures vista implements, measured exactly as
`vista bench models` measures them (random input, batch 32, one warm-up step, then
timed steps), printed as one JSON object per line.

Run: `python3 xtask/bench/models.py --sizes 64,128 --batch 32 --steps 3` (Debian's
python3-torch and python3-torchvision; `cargo xtask bench models` installs them).
"""
import argparse
import json
import os
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


def build(name):
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
    # Every core, as vista uses them: Debian's torch starts with one thread here.
    p.add_argument("--threads", type=int, default=os.cpu_count())
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for name in a.models.split(","):
        for size in map(int, a.sizes.split(",")):
            rate = None
            if not (name == "inception_v3" and size < 75):
                model = build(name).train()
                x = torch.randn(a.batch, 3, size, size)
                y = torch.arange(a.batch) % 10
                loss = nn.CrossEntropyLoss()

                def step():
                    model.zero_grad(set_to_none=True)
                    loss(model(x), y).backward()

                step()
                start = time.perf_counter()
                for _ in range(a.steps):
                    step()
                rate = a.steps * a.batch / (time.perf_counter() - start)
            print(json.dumps({"model": name, "size": size, "batch": a.batch, "backend": f"torch {torch.__version__}",
                              "threads": torch.get_num_threads(),
                              "img_per_s": None if rate is None else round(rate, 2)}), flush=True)


main()
