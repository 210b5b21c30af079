"""fastai's side of `cargo xtask bench train`: the recipe the fastai docs teach, on the
same Fashion-MNIST folder vista trains on, timed end to end.

vision_learner(resnet18, pretrained=False) at 28 px, batch 128, lr_find() (valley), then
fit_one_cycle(3); test accuracy against answers/test_labels.csv. Prints one JSON line:
{"framework", "test_accuracy", "wall_s", "lr", "train_img_per_s"}.

Usage: python3 train_fastai.py DATA_FOLDER [--epochs 3] [--threads N]
"""
import argparse
import json
import os
import time

START = time.time()

import pandas as pd  # noqa: E402
import torch  # noqa: E402
from fastai.vision.all import (  # noqa: E402
    ColReader,
    ImageDataLoaders,
    Resize,
    accuracy,
    resnet18,
    vision_learner,
)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("data")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    df = pd.read_csv(os.path.join(a.data, "train.csv"))
    classes = [c.strip() for c in open(os.path.join(a.data, "classes.txt")) if c.strip()]
    df["label"] = df["label"].map(lambda i: classes[int(i)])
    dls = ImageDataLoaders.from_df(
        df,
        path=a.data,
        folder="images",
        fn_col=0,
        label_col=1,
        valid_pct=0.1,
        seed=a.seed,
        item_tfms=Resize(28),
        bs=128,
        num_workers=0,
    )
    learn = vision_learner(dls, resnet18, pretrained=False, metrics=accuracy)
    lr = learn.lr_find(show_plot=False).valley
    fit_start = time.time()
    learn.fit_one_cycle(a.epochs, lr)
    fit_s = time.time() - fit_start

    test = pd.read_csv(os.path.join(a.data, "answers", "test_labels.csv"))
    files = [os.path.join(a.data, "images", n) for n in test["image_name"]]
    tdl = learn.dls.test_dl(files, num_workers=0)
    preds, _ = learn.get_preds(dl=tdl)
    # fastai's vocabulary is the sorted class names; the answers hold classes.txt ids.
    vocab = list(learn.dls.vocab)
    pred = [vocab[i] for i in preds.argmax(1).tolist()]
    truth = [classes[int(i)] for i in test["label"]]
    acc = sum(p == t for p, t in zip(pred, truth)) / len(truth)
    n_train = len(dls.train_ds) * a.epochs
    print(json.dumps({
        "framework": f"fastai {__import__('fastai').__version__}, torch {torch.__version__}",
        "test_accuracy": round(acc, 4),
        "wall_s": round(time.time() - START, 1),
        "lr": lr,
        "train_img_per_s": round(n_train / fit_s, 1),
    }))


if __name__ == "__main__":
    main()
