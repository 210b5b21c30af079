"""Regenerates the image fixtures of vista's tests (requires Pillow).

Run from this folder: `python3 make_fixtures.py`. Images are tiny so the fixtures stay
a few kilobytes; the content is seeded, so reruns give the same files.
"""
import csv
import io
import os
import random
import shutil

from PIL import Image

random.seed(0)


def noise(w, h, mode="RGB"):
    img = Image.new(mode, (w, h))
    bands = len(mode)
    img.putdata([tuple(random.randrange(256) for _ in range(bands)) for _ in range(w * h)])
    return img


def jpeg_bytes(img, **kw):
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


# A folder dataset with one of each problem the validator names, and two unusual but
# valid encodings (CMYK JPEG, 16-bit PNG) that must decode to the same RGB as PIL's.
fresh("bad-folder")
for c in ["cat", "dog", "owl"]:
    os.makedirs(f"bad-folder/{c}")
open("bad-folder/owl/.gitkeep", "w").close()  # an empty class folder git can keep
noise(20, 16).save("bad-folder/cat/good1.jpg", quality=90)
noise(18, 18, "RGBA").save("bad-folder/cat/rgba.png")
good = jpeg_bytes(noise(32, 32))
open("bad-folder/cat/truncated.jpg", "wb").write(good[: len(good) // 2])
open("bad-folder/cat/notes.jpg", "w").write("this is a text file, not a JPEG\n")
open("bad-folder/cat/empty.png", "wb").close()
noise(22, 14).save("bad-folder/dog/good2.jpg", quality=90)
cmyk = noise(16, 16, "CMYK")
cmyk.save("bad-folder/dog/cmyk.jpg", quality=95)
Image.open("bad-folder/dog/cmyk.jpg").convert("RGB").save("cmyk.expected.png")
g16 = Image.new("I;16", (12, 10))
g16.putdata([random.randrange(65536) for _ in range(120)])
g16.save("bad-folder/dog/gray16.png")

# A path,label CSV over those files: a missing file, an unknown label and a duplicate row.
fresh("bad-csv")
open("bad-csv/classes.txt", "w").write("cat\ndog\n")
with open("bad-csv/labels.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["path", "label"])
    w.writerow(["../bad-folder/cat/good1.jpg", "cat"])
    w.writerow(["../bad-folder/dog/good2.jpg", "dog"])
    w.writerow(["../bad-folder/dog/missing.jpg", "dog"])
    w.writerow(["../bad-folder/cat/rgba.png", "horse"])
    w.writerow(["../bad-folder/cat/good1.jpg", "cat"])

# The Kaggle Intel layout, two images per class and split.
classes = ["buildings", "forest", "glacier", "mountain", "sea", "street"]
fresh("kaggle")
for split in ["seg_train", "seg_test"]:
    for c in classes:
        d = f"kaggle/{split}/{split}/{c}"
        os.makedirs(d)
        for i in range(2):
            noise(15, 15).save(f"{d}/{i}.jpg", quality=85)
os.makedirs("kaggle/seg_pred/seg_pred")
for i in range(3):
    noise(15, 15).save(f"kaggle/seg_pred/seg_pred/{100 + i}.jpg", quality=85)

# The Analytics Vidhya layout: train.csv with label ids, test.csv, one image folder.
fresh("av")
os.makedirs("av/train")
with open("av/train.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["image_name", "label"])
    for i in range(12):
        noise(15, 15).save(f"av/train/{i}.jpg", quality=85)
        w.writerow([f"{i}.jpg", i % 6])
with open("av/test.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["image_name"])
    for i in range(12, 15):
        noise(15, 15).save(f"av/train/{i}.jpg", quality=85)
        w.writerow([f"{i}.jpg"])
