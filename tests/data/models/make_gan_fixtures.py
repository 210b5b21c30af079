"""Regenerates the WGAN network parity fixtures (Debian's python3-torch).

Run from this folder: `/usr/bin/python3 make_gan_fixtures.py`. The generator and critic
are written with vista's module names (`embed`, `blocks.<i>.conv/bn`, `out`; `convs.<i>`,
`out`) in fastai's DCGAN shape: a class-conditional 32 px pair with 8 base features,
16-dim noise and a 6-dim class embedding. Saves `gan_generator.pth` and `gan_critic.pth`,
the noise and labels, PyTorch's eval-mode images and the critic's scores of them.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
NOISE, EMB, CLASSES, FEAT = 16, 6, 4, 8


class Up(nn.Module):
    def __init__(self, cin, cout, stride, pad):
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 4, stride, pad, bias=False)
        self.bn = nn.BatchNorm2d(cout)


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(CLASSES, EMB)
        feats = FEAT * 4
        blocks = [Up(NOISE + EMB, feats, 1, 0)]
        for _ in range(2):
            blocks.append(Up(feats, feats // 2, 2, 1))
            feats //= 2
        self.blocks = nn.ModuleList(blocks)
        self.out = nn.ConvTranspose2d(feats, 3, 4, 2, 1, bias=False)

    def forward(self, z, y):
        x = torch.cat([z, self.embed(y)], 1)[:, :, None, None]
        for b in self.blocks:
            x = F.relu(b.bn(b.conv(x)))
        return torch.tanh(self.out(x))


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        convs, feats = [nn.Conv2d(3 + CLASSES, FEAT, 4, 2, 1)], FEAT
        for _ in range(2):
            convs.append(nn.Conv2d(feats, feats * 2, 4, 2, 1))
            feats *= 2
        self.convs = nn.ModuleList(convs)
        self.out = nn.Conv2d(feats, 1, 4, 1, 0)

    def forward(self, x, y):
        planes = F.one_hot(y, CLASSES).float()[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        x = torch.cat([x, planes], 1)
        for c in self.convs:
            x = F.leaky_relu(c(x), 0.2)
        return self.out(x).flatten()


g, c = Generator(), Critic()
for m in g.modules():
    if isinstance(m, nn.BatchNorm2d):
        m.running_mean.uniform_(-0.3, 0.3)
        m.running_var.uniform_(0.5, 1.5)
g.eval()
z = torch.randn(2, NOISE)
y = torch.tensor([1, 3])
with torch.no_grad():
    images = g(z, y)
    scores = c(images, y)
torch.save(g.state_dict(), "gan_generator.pth")
torch.save(c.state_dict(), "gan_critic.pth")
z.numpy().astype("<f4").tofile("gan.noise.f32")
images.numpy().astype("<f4").tofile("gan.images.f32")
scores.numpy().astype("<f4").tofile("gan.scores.f32")
