"""Regenerates the hostile checkpoints that `tests/it/hostile.rs` feeds the reader.

Run from this folder: `/usr/bin/python3 make_hostile.py` (Debian's python3-torch, 1.13).
Each file attacks one weakness a reader of untrusted `.pth` files can have; the test
beside each name in `hostile.rs` states what the reader must do with it. Files that
`torch.save` can write are written by it; the others are built from raw pickle opcodes
(named as in CPython's `Lib/pickle.py`) and raw zip records (APPNOTE.TXT), because
they describe what no honest writer produces. No file here is ever unpickled by Python.
"""
import collections
import io
import os
import struct
import zipfile
import zlib

import torch

# A file the pickle in pickle_exec*.pth would create if a reader ran it.
MARKER = "/tmp/vista-hostile-pickle-ran"


def save(obj, name, legacy=False):
    torch.save(obj, name, _use_new_zipfile_serialization=not legacy)


def saved(obj, legacy=False):
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


# Raw pickle opcodes.

def op_int(v):
    if 0 <= v < 256:
        return b"K" + bytes([v])  # BININT1
    if 0 <= v < 65536:
        return b"M" + struct.pack("<H", v)  # BININT2
    if -(2**31) <= v < 2**31:
        return b"J" + struct.pack("<i", v)  # BININT
    n = (v.bit_length() + 8) // 8
    return b"\x8a" + bytes([n]) + v.to_bytes(n, "little", signed=True)  # LONG1


def op_str(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b  # BINUNICODE


def op_tuple(items):
    return b"(" + b"".join(items) + b"t"  # MARK ... TUPLE


def op_tensor(key, numel, offset, shape, stride):
    """`torch._utils._rebuild_tensor_v2` of a float storage, as torch.save writes it."""
    pid = op_tuple([op_str("storage"), b"ctorch\nFloatStorage\n", op_str(key),
                    op_str("cpu"), op_int(numel)])
    return (b"ctorch._utils\n_rebuild_tensor_v2\n("
            + pid + b"Q"  # BINPERSID
            + op_int(offset)
            + op_tuple([op_int(d) for d in shape])
            + op_tuple([op_int(s) for s in stride])
            + b"\x89"  # NEWFALSE: requires_grad
            + b"ccollections\nOrderedDict\n)R"  # backward hooks
            + b"tR")


def pickle_dict(items):
    """PROTO 2, then a dict of (key, value opcodes), then STOP."""
    return b"\x80\x02}(" + b"".join(op_str(k) + v for k, v in items) + b"u."


def floats(*values):
    return struct.pack(f"<{len(values)}f", *values)


def torch_zip(pkl, storages, compress=zipfile.ZIP_STORED):
    """The zip layout of torch.save: archive/data.pkl, archive/data/<key>, version."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for key, data in storages.items():
            z.writestr(f"archive/data/{key}", data, compress_type=compress)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


# Raw zip records, so that sizes, counts and names can be made to lie.

def raw_zip(entries, zip64=False, declared_entries=None):
    """entries: (name, data, declared size or None); zip64 puts every size and offset in
    zip64 extra fields and writes the zip64 end record and locator."""
    out, central = bytearray(), bytearray()
    for name, data, declared in entries:
        name = name.encode()
        size = len(data) if declared is None else declared
        offset = len(out)
        crc = zlib.crc32(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc,
                           min(size, 0xFFFFFFFF), min(size, 0xFFFFFFFF), len(name), 0)
        out += name + data
        big = zip64 or size >= 0xFFFFFFFF
        extra = struct.pack("<HHQQQ", 1, 24, size, size, offset) if big else b""
        size32 = 0xFFFFFFFF if big else size
        offset32 = 0xFFFFFFFF if big else offset
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc,
                               size32, size32, len(name), len(extra), 0, 0, 0, 0, offset32)
        central += name + extra
    count = len(entries) if declared_entries is None else declared_entries
    cd_offset, cd_size = len(out), len(central)
    out += central
    if zip64:
        end64 = len(out)
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count,
                           cd_size, cd_offset)
        out += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF,
                           0xFFFFFFFF, 0)
    else:
        out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, cd_size,
                           cd_offset, 0)
    return bytes(out)


def write(name, data):
    with open(name, "wb") as f:
        f.write(data)


def one_tensor(offset, shape, stride, storage=floats(1, 2, 3, 4)):
    numel = len(storage) // 4
    return torch_zip(pickle_dict([("weight", op_tensor("0", numel, offset, shape, stride))]),
                     {"0": storage})


class Call:
    """Pickles as a call of `func(*args)`, which unpickling would run."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


# 1. Sharing: t(k+1) = (t(k), t(k)), 40 levels: a few hundred bytes that unfold into 2^40
#    paths to one tensor.
t = torch.zeros(1)
for _ in range(40):
    t = (t, t)
save({"bomb": t}, "shared_tuple_bomb.pth")

# One list of 200,000 items, memoized once and referenced 200,000 times.
items = [None] * 200_000
save({"weight": torch.ones(2), "history": [items] * 200_000}, "memo_list_bomb.pth")

# A state dict saved under two names: pickle memoizes the OrderedDict before filling it.
sd = collections.OrderedDict(w=torch.tensor([1.0, 2.0]))
save({"model": sd, "ema": sd}, "shared_state_dict.pth")

# 2. Nesting 100,000 lists deep around a tensor (EMPTY_LIST x n, tensor, APPEND x n).
depth = 100_000
deep = b"]" * depth + op_tensor("0", 1, 0, (1,), (1,)) + b"a" * depth
write("deep_nesting.pth", torch_zip(pickle_dict([("deep", deep)]), {"0": floats(1)}))

# 3. A 64 MiB storage of zeros, deflated to about 64 KiB.
plain = zipfile.ZipFile(io.BytesIO(saved({"weight": torch.zeros(16 << 20)})))
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w") as z:
    for info in plain.infolist():
        method = zipfile.ZIP_DEFLATED if "/data/" in info.filename else zipfile.ZIP_STORED
        z.writestr(info.filename, plain.read(info), compress_type=method, compresslevel=9)
write("deflate_bomb.pth", buf.getvalue())

# 4. Shapes, strides and offsets that overflow, expand or leave the storage.
write("huge_shape.pth", one_tensor(0, (2**31, 2**31, 2**31), (1, 1, 1)))
write("stride0_expansion.pth", one_tensor(0, (100_000, 100_000), (0, 0), floats(1)))
write("shape_stride_mismatch.pth", one_tensor(0, (2, 2), (1,)))
write("offset_out_of_range.pth", one_tensor(3, (4,), (1,)))
write("offset_overflow.pth", one_tensor(2**63 - 1, (3,), (2**63 - 1,)))
write("negative_stride.pth", one_tensor(3, (4,), (-1,)))

# 5. 0-dimensional tensors under the keys the architecture guess reads.
scalar = torch.tensor(1.0)
save({"conv1.weight": scalar, "layer4.0.conv1.weight": scalar, "fc.weight": scalar},
     "zero_dim_resnet.pth")
save({"conv2d_1a_3x3.conv.weight": scalar, "mixed_7c.branch_pool.conv.weight": scalar,
      "fc.weight": scalar}, "zero_dim_inception.pth")
save({"conv_stem.weight": scalar, "fc.weight": scalar}, "zero_dim_efficientnet.pth")

# 6. A legacy file whose magic number is off by one in its lowest byte.
legacy = bytearray(saved({"weight": torch.ones(2)}, legacy=True))
magic = (0x1950A86A20F9469CFC6C).to_bytes(10, "little")
at = legacy.index(b"\x8a\x0a" + magic)
legacy[at + 2] ^= 1
write("legacy_wrong_magic.pth", bytes(legacy))

# Truncated files: half of each format.
state = {f"layer{i}.weight": torch.arange(64, dtype=torch.float32) for i in range(4)}
whole = saved(state)
write("truncated_zip.pth", whole[: len(whole) // 2])
whole = saved(state, legacy=True)
write("truncated_legacy.pth", whole[: len(whole) * 3 // 4])

# Pickles that would run shell commands if a reader executed them.
payload = {
    "weight": torch.ones(2),
    "system": Call(os.system, f"touch {MARKER}"),
    "eval": Call(eval, f"open({MARKER!r}, 'w')"),
}
save(payload, "pickle_exec.pth")
save(payload, "pickle_exec_legacy.pth", legacy=True)

# Hostile zip records around an honest pickle.
honest = pickle_dict([("weight", op_tensor("0", 4, 0, (4,), (1,)))])
storage = floats(1, 2, 3, 4)
entries = [("archive/data.pkl", honest, None), ("archive/data/0", storage, None),
           ("archive/version", b"3\n", None)]
write("zip64_ok.pth", raw_zip(entries, zip64=True))
write("zip_many_entries.pth", raw_zip(entries, zip64=True, declared_entries=2**40))
write("zip_huge_size.pth",
      raw_zip([entries[0], ("archive/data/0", storage, 2**40), entries[2]], zip64=True))
write("zip_long_name.pth", raw_zip(entries + [("x" * 4000, b"", None)]))
