#!/usr/bin/python3
"""Writes tests/data/resample/interpolate.txt: reference outputs of
torch.nn.functional.interpolate (align_corners=False where it applies) for the
interpolate test in tests/check_ops_conv.c.

Format (whitespace separated text):
  input B C H W            then B*C*H*W values (row-major)
  case MODE OH OW          then B*C*OH*OW values, one block per case
Modes are named as in PyTorch: nearest, area, bilinear, bicubic.
Run from the source tree: /usr/bin/python3 tests/data/gen_resample.py
"""
import os
import torch
import torch.nn.functional as F

here = os.path.dirname(os.path.abspath(__file__))
out_path = os.path.join(here, "resample", "interpolate.txt")

g = torch.Generator().manual_seed(1234)
B, C, H, W = 1, 2, 7, 9
x = torch.randn(B, C, H, W, generator=g, dtype=torch.float32)
# a smooth ramp in one channel so bicubic overshoot and border clamping both show
x[0, 1] = torch.linspace(-1, 1, H * W).reshape(H, W) ** 3

sizes = [(13, 20), (4, 5), (7, 9), (3, 17), (14, 18), (16, 6), (1, 1)]
modes = ["nearest", "area", "bilinear", "bicubic"]

def fmt(t):
    return "\n".join(" ".join("%.9g" % v for v in row) for row in t.reshape(-1, t.shape[-1]).tolist())

with open(out_path, "w") as f:
    f.write("input %d %d %d %d\n" % (B, C, H, W))
    f.write(fmt(x) + "\n")
    for mode in modes:
        for (oh, ow) in sizes:
            kw = {} if mode in ("nearest", "area") else {"align_corners": False}
            y = F.interpolate(x, size=(oh, ow), mode=mode, **kw)
            f.write("case %s %d %d\n" % (mode, oh, ow))
            f.write(fmt(y) + "\n")
print("wrote", out_path)
