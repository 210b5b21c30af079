"""Regenerates the checkpoint-reader fixtures (Debian's python3-torch).

Run from this folder: `/usr/bin/python3 make_reader_fixtures.py`. Both files hold the
same tensors, saved as views whose storage is not laid out row-major, which is what
TensorFlow-converted checkpoints look like: a permuted tensor, a slice with an offset,
half and bfloat16 tensors, and a nested dict with an integer tensor.
"""
import torch

tensors = {
    "permuted": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4).permute(2, 0, 1),
    "sliced": torch.arange(10, dtype=torch.float32)[3:7],
    "half": torch.tensor([0.5, -2.0, 65504.0], dtype=torch.float16),
    "bfloat": torch.tensor([1.5, -3.0], dtype=torch.bfloat16),
    "nested": {"count": torch.tensor(7)},
}
assert not tensors["permuted"].is_contiguous()
torch.save(tensors, "reader_zip.pth")
torch.save(tensors, "reader_legacy.pth", _use_new_zipfile_serialization=False)
