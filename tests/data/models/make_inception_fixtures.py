"""Regenerates the Inception v3 parity fixture (Debian's python3-torch and torchvision).

Run from this folder: `/usr/bin/python3 make_inception_fixtures.py`. It builds
torchvision's own `Inception3` at 1/16 width — every `BasicConv2d` gets its channel
counts divided by 16 through the blocks' `conv_block` argument, so module names stay
torchvision's — with random weights and BatchNorm statistics, and saves it as
`inception_v3_w16.pth` (zip format) with a fixed 80x80 input and PyTorch's eval-mode
logits (`inception_v3_w16.input.f32`, `inception_v3_w16.logits.f32`).
"""
import functools
import json

import torch
import torch.nn as nn
from torchvision.models import inception as tv

torch.manual_seed(0)
DIV = 16


def scaled(cin, cout, **kw):
    return tv.BasicConv2d(cin if cin == 3 else cin // DIV, cout // DIV, **kw)


blocks = [scaled] + [functools.partial(b, conv_block=scaled) for b in
                     (tv.InceptionA, tv.InceptionB, tv.InceptionC, tv.InceptionD, tv.InceptionE, tv.InceptionAux)]
model = tv.Inception3(num_classes=10, aux_logits=False, transform_input=False, inception_blocks=blocks,
                      init_weights=False)
model.fc = nn.Linear(2048 // DIV, 10)
for m in model.modules():
    if isinstance(m, nn.BatchNorm2d):
        m.running_mean.uniform_(-0.5, 0.5)
        m.running_var.uniform_(0.5, 1.5)
        m.weight.data.uniform_(0.5, 1.5)
        m.bias.data.uniform_(-0.3, 0.3)
model.eval()
x = torch.randn(2, 3, 80, 80)
with torch.no_grad():
    y = model(x)
torch.save(model.state_dict(), "inception_v3_w16.pth")
x.numpy().astype("<f4").tofile("inception_v3_w16.input.f32")
y.numpy().astype("<f4").tofile("inception_v3_w16.logits.f32")
shapes = json.load(open("fixtures.json"))
shapes["inception_v3_w16"] = {"input": list(x.shape), "logits": list(y.shape)}
json.dump(shapes, open("fixtures.json", "w"), indent=1)
