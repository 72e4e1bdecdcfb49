#!/usr/bin/env python3
"""Generates the small reference checkpoints of tests/check_io.c into tests/data/io/.

Run from the repository root with a Python that has torch and numpy:
    python3 tests/data/gen_io.py

Files:
  lightning_like.ckpt   torch.save (protocol 2) of a Lightning-style dict whose
                        state_dict holds shared storages, offset / transposed /
                        strided / expanded (stride 0) views, a Parameter, every
                        dtype the reader maps, a 0-dim and an empty tensor; the
                        other keys hold optimizer states, a callback object of a
                        class the reader does not know, an AttributeDict, a numpy
                        scalar, a set, a 2**70 integer, a defaultdict, a path and
                        nested containers.
  flat_p4.pt            torch.save(OrderedDict of tensors, pickle_protocol=4):
                        FRAME, SHORT_BINUNICODE, MEMOIZE, STACK_GLOBAL.
  zip64_unaligned.pt    flat_p4.pt rewritten by Python's zipfile with every ZIP64
                        record forced (central extras, zip64 end record and
                        locator) and no alignment padding, so tensor data sits at
                        odd offsets: an independent zip writer.
  legacy.pt             the pre-1.6 format (_use_new_zipfile_serialization=False).
  expected.safetensors  the contiguous values of lightning_like.ckpt's state_dict,
                        written by hand below (not by the reader under test).
"""
import collections
import json
import os
import pathlib
import struct
import sys
import types
import zipfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "io")


def fake_class(module, name, base=object):
    """A class that pickles as module.name, like a Lightning class would."""
    parts = module.split(".")
    for i in range(1, len(parts) + 1):
        sys.modules.setdefault(".".join(parts[:i]), types.ModuleType(".".join(parts[:i])))
    cls = type(name, (base,), {"__module__": module})
    setattr(sys.modules[module], name, cls)
    return cls


def state_dict():
    g = torch.Generator().manual_seed(1234)
    a = torch.randn(4, 6, generator=g)
    shared = torch.randn(3, 2, generator=g)
    sd = collections.OrderedDict()
    sd["a"] = a
    sd["a_slice"] = a[1:3]                 # storage offset 6
    sd["a_t"] = a.t()                      # strides (1, 6)
    sd["a_col"] = a[:, 2]                  # offset 2, stride 6
    sd["first_stage_model.w"] = shared     # one storage under two names
    sd["cond_stage_model.w"] = shared
    sd["expanded"] = torch.randn(3, 1, generator=g).expand(3, 4)   # stride 0
    sd["h"] = torch.randn(3, 5, generator=g).half()
    sd["bf"] = torch.randn(2, 3, generator=g).bfloat16()
    sd["d"] = torch.randn(2, 2, generator=g).double()
    sd["i64"] = torch.arange(5) - 2
    sd["i32"] = torch.arange(6, dtype=torch.int32).reshape(2, 3) * 1000
    sd["u8"] = torch.tensor([0, 1, 254, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.5)
    sd["empty"] = torch.zeros(0, 3)
    sd["param"] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    return sd


ST_DTYPE = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
            torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype == torch.bfloat16 else t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPE[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def rezip_zip64(src, dst):
    saved = zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT
    zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = 1, 1
    try:
        with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zo:
            for info in zi.infolist():
                zo.writestr(info.filename, zi.read(info.filename))
    finally:
        zipfile.ZIP64_LIMIT, zipfile.ZIP_FILECOUNT_LIMIT = saved


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()

    Callback = fake_class("pytorch_lightning.callbacks.model_checkpoint", "ModelCheckpoint")
    AttributeDict = fake_class("pytorch_lightning.utilities.parsing", "AttributeDict", dict)
    cb = Callback()
    cb.best_model_score = torch.tensor(0.25)
    cb.monitor = "val/rec_loss"
    hp = AttributeDict(embed_dim=16, ddconfig={"ch_mult": [1, 1, 2]})
    ckpt = {
        "epoch": 7,
        "global_step": 12345,
        "pytorch-lightning_version": "1.0.8",
        "callbacks": {Callback: {"best_model_score": torch.tensor(0.25)}, "instance": cb},
        "optimizer_states": [{
            "state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.full((2, 2), 0.5)}},
            "param_groups": [{"lr": 0.001, "betas": (0.5, 0.9), "params": [0, 1]}],
        }],
        "lr_schedulers": [],
        "state_dict": sd,
        "hyper_parameters": hp,
        "numpy_scalar": np.float64(0.5),
        "a_set": {3},
        "bigint": 2 ** 70,
        "nested": {"list": [1, 2.5, "x", None, True], "tuple": (1, -2), "neg": -123456789012},
        "counts": collections.defaultdict(list, {"a": [1, 2]}),
        "data_dir": pathlib.PurePosixPath("/data/images"),
    }
    torch.save(ckpt, os.path.join(OUT, "lightning_like.ckpt"))
    torch.save(collections.OrderedDict((k, sd[k]) for k in ["a", "a_t", "h", "i64", "scalar"]),
               os.path.join(OUT, "flat_p4.pt"), pickle_protocol=4)
    rezip_zip64(os.path.join(OUT, "flat_p4.pt"), os.path.join(OUT, "zip64_unaligned.pt"))
    z64 = torch.load(os.path.join(OUT, "zip64_unaligned.pt"))
    assert all(torch.equal(z64[k], sd[k]) for k in z64)
    torch.save({"w": torch.zeros(2)}, os.path.join(OUT, "legacy.pt"), _use_new_zipfile_serialization=False)
    write_safetensors(os.path.join(OUT, "expected.safetensors"), sd)

    # the loader must see exactly what torch sees
    back = torch.load(os.path.join(OUT, "lightning_like.ckpt"))
    for k, v in sd.items():
        assert torch.equal(back["state_dict"][k], v), k


if __name__ == "__main__":
    main()
