"""Golden values for vista-schedule, computed with fastai's own formulas.

Run from this folder: `/usr/bin/python3 make_golden.py` (needs numpy). The functions
below are transcribed from fastai 2.x (`fastai/callback/schedule.py`: `sched_cos`,
`combined_cos`, `fit_one_cycle`, `fit_flat_cos`, `LRFinder`, `valley`, `steep`,
`minimum`, `slide`, and `lr_find`'s trimming), with numpy in place of torch.
"""
import json
import math

import numpy as np


def sched_cos(start, end, pos):
    return start + (1 + math.cos(math.pi * (1 - pos))) * (end - start) / 2


def combined_cos(pct, start, middle, end, pos):
    if pos < pct:
        return sched_cos(start, middle, pos / pct)
    return sched_cos(middle, end, (pos - pct) / (1 - pct))


def one_cycle(lr_max, pos, div=25.0, div_final=1e5, pct_start=0.25):
    return (combined_cos(pct_start, lr_max / div, lr_max, lr_max / div_final, pos),
            combined_cos(pct_start, 0.95, 0.85, 0.95, pos))


def flat_cos(lr, pos, pct_start=0.75, div_final=1e5):
    return combined_cos(pct_start, lr, lr, lr / div_final, pos)


def valley(lrs, losses):
    n = len(losses)
    max_start, max_end = 0, 0
    lds = [1] * n
    for i in range(1, n):
        for j in range(0, i):
            if (losses[i] < losses[j]) and (lds[i] < lds[j] + 1):
                lds[i] = lds[j] + 1
            if lds[max_end] < lds[i]:
                max_end = i
                max_start = max_end - lds[max_end]
    sections = (max_end - max_start) / 3
    idx = max_start + int(sections) + int(sections / 2)
    return float(lrs[idx])


def steep(lrs, losses):
    grads = (losses[1:] - losses[:-1]) / (np.log(lrs[1:]) - np.log(lrs[:-1]))
    return float(lrs[grads.argmin()])


def minimum(lrs, losses):
    return float(lrs[losses.argmin()] / 10)


def slide(lrs, losses, lr_diff=15, thresh=.005):
    loss_grad = np.gradient(losses)
    r_idx = -1
    l_idx = r_idx - lr_diff
    local_min_lr = lrs[l_idx]
    while (l_idx >= -len(losses)) and (abs(loss_grad[r_idx] - loss_grad[l_idx]) > thresh):
        local_min_lr = lrs[l_idx]
        r_idx -= 1
        l_idx -= 1
    return float(local_min_lr)


def raw_loss(i, lr):
    """A loss curve shaped like a real sweep: flat, falling, then blowing up."""
    x = math.log10(lr)
    return 2.3 - 1.6 / (1 + math.exp(-2.0 * (x + 3.5))) + math.exp(2.2 * (x - 0.2)) + 0.03 * math.sin(1.7 * i)


def lr_finder(start=1e-7, end=10.0, num_it=100, beta=0.98, nan_at=None):
    avg, best, lrs, losses = 0.0, float("inf"), [], []
    for i in range(num_it):
        lr = start * (end / start) ** (i / num_it)
        loss = float("nan") if nan_at is not None and i >= nan_at else raw_loss(i, lr)
        avg = beta * avg + (1 - beta) * loss
        smooth = avg / (1 - beta ** (i + 1))
        lrs.append(lr)
        losses.append(smooth)
        if smooth < best:
            best = smooth
        if smooth > 4 * best or math.isnan(smooth):
            break
    lrs, losses = np.array(lrs), np.array(losses)
    k_lrs, k_losses = lrs[num_it // 10:-5], losses[num_it // 10:-5]
    nan = np.nonzero(np.isnan(k_losses))[0]
    if len(nan):
        k_lrs, k_losses = k_lrs[:nan.min()], k_losses[:nan.min()]
    return {
        "steps": len(lrs),
        "last_lr": float(lrs[-1]),
        "last_loss": None if math.isnan(losses[-1]) else float(losses[-1]),
        "valley": valley(k_lrs, k_losses),
        "steep": steep(k_lrs, k_losses),
        "minimum": minimum(k_lrs, k_losses),
        "slide": slide(k_lrs, k_losses),
    }


positions = [0.0, 0.1, 0.25, 0.4, 0.75, 0.9, 0.99]
golden = {
    "positions": positions,
    "one_cycle_lr": [one_cycle(1e-2, p)[0] for p in positions],
    "one_cycle_mom": [one_cycle(1e-2, p)[1] for p in positions],
    "flat_cos": [flat_cos(3e-3, p) for p in positions],
    "cosine": [sched_cos(0.1, 1e-4, p) for p in positions],
    "finder": lr_finder(),
    "finder_nan": lr_finder(nan_at=80),
}
json.dump(golden, open("golden.json", "w"), indent=1)
