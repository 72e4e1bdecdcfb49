#!/usr/bin/env python3
"""Generates the legacy-format (PyTorch < 1.6) checkpoints of tests/check_io.c and
tests/lua/test_legacy_ckpt.lua into tests/data/io/.

Run from the repository root with a Python that has torch and numpy (a
development tool only; the tests read the committed files):
    python3 tests/data/gen_legacy.py

torch.save(..., _use_new_zipfile_serialization=False) writes the serialisation
of PyTorch < 1.6: pickles in a row (magic number, protocol version, sys_info,
the object, the list of storage keys) followed by each storage's element count
and raw bytes. The standard FID Inception weights file is in this format.

Files:
  legacy_mixed.pt         {'state_dict': gen_io.state_dict() (shared storages,
                          offset / transposed / strided / expanded views, a
                          Parameter, every dtype the reader maps, a 0-dim and an
                          empty tensor), 'extra_i8': an int8 tensor (a storage
                          class the reader does not map: its bytes must be
                          stepped over), 'after': a tensor whose storage follows
                          it, 'epoch', 'note', 'nested'}; its state_dict's
                          values are expected.safetensors (made by gen_io.py).
  legacy_inception.pth    the state_dict (an OrderedDict with _metadata) of the
                          FID Inception's first block, Conv2d_1a_3x3 (conv
                          without bias + BatchNorm eps 0.001), with
                          num_batches_tracked, pickle protocol 2.
  legacy_inception_nonbt.pth  the same without num_batches_tracked (like the
                          2015 weights file), pickle protocol 4 (FRAME,
                          MEMOIZE, STACK_GLOBAL).
  expected_legacy.safetensors  'after' and the Inception block's values, written
                          by hand (not by the reader under test).
"""
import collections
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_io import OUT, state_dict, write_safetensors  # noqa: E402


def inception_block():
    g = torch.Generator().manual_seed(2015)
    conv = torch.nn.Conv2d(3, 32, kernel_size=3, stride=2, bias=False)
    bn = torch.nn.BatchNorm2d(32, eps=0.001)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g) * 0.2)
        bn.weight.copy_(torch.rand(32, generator=g) + 0.5)
        bn.bias.copy_(torch.randn(32, generator=g) * 0.1)
        bn.running_mean.copy_(torch.randn(32, generator=g) * 0.1)
        bn.running_var.copy_(torch.rand(32, generator=g) + 0.5)
        bn.num_batches_tracked.fill_(7)
    block = torch.nn.Module()
    block.conv, block.bn = conv, bn
    net = torch.nn.Module()
    net.Conv2d_1a_3x3 = block
    return net.state_dict()


def main():
    os.makedirs(OUT, exist_ok=True)
    sd = state_dict()
    g = torch.Generator().manual_seed(4321)
    after = torch.randn(3, generator=g)
    obj = {
        "state_dict": sd,
        "extra_i8": torch.tensor([-128, -1, 0, 127], dtype=torch.int8),
        "after": after,
        "epoch": 3,
        "note": "legacy",
        "nested": {"list": [1, 2.5, "x", None, True], "neg": -123456789012},
    }
    mixed = os.path.join(OUT, "legacy_mixed.pt")
    torch.save(obj, mixed, _use_new_zipfile_serialization=False)

    inc = inception_block()
    assert "Conv2d_1a_3x3.bn.num_batches_tracked" in inc and hasattr(inc, "_metadata")
    with_nbt = os.path.join(OUT, "legacy_inception.pth")
    torch.save(inc, with_nbt, _use_new_zipfile_serialization=False)
    no_nbt = collections.OrderedDict((k, v) for k, v in inc.items() if not k.endswith("num_batches_tracked"))
    no_nbt._metadata = inc._metadata
    without = os.path.join(OUT, "legacy_inception_nonbt.pth")
    torch.save(no_nbt, without, _use_new_zipfile_serialization=False, pickle_protocol=4)

    expected = {"after": after}
    expected.update(inc)
    write_safetensors(os.path.join(OUT, "expected_legacy.safetensors"), expected)

    # the files are legacy ones, and torch reads back exactly what was saved
    for path in (mixed, with_nbt, without):
        with open(path, "rb") as f:
            assert f.read(2) != b"PK", path
    back = torch.load(mixed)
    for k, v in sd.items():
        assert torch.equal(back["state_dict"][k], v), k
    assert torch.equal(back["after"], after) and torch.equal(back["extra_i8"], obj["extra_i8"])
    for path, want in ((with_nbt, inc), (without, no_nbt)):
        got = torch.load(path)
        assert list(got) == list(want), path
        assert all(torch.equal(got[k], want[k]) for k in want), path


if __name__ == "__main__":
    main()
