#!/usr/bin/env python3
"""Writes tests/data/norm/torch_ref.bin: PyTorch (fp32, CPU) outputs and
gradients of group norm, layer norm, batch norm (train and eval, with the
running-statistics update), softmax / log_softmax with -inf entries, and
minGPT-style masked attention, for check_ops_norm and check_ops_attention.

The tests compute exact double-precision references themselves; this file
is the independent check of the semantics (group order, unbiased running
variance, the mask) against PyTorch's own modules and functions.

Format (little endian): b"TTREF1\\0\\0", u32 count, then per tensor:
u32 name length, name bytes (UTF-8), u32 ndim, i64 dims[ndim],
f32 data[prod(dims)] (C order).

Run: /usr/bin/python3 tests/data/gen_norm.py   (from the source root)
"""
import math
import os
import struct

import numpy as np
import torch

torch.set_grad_enabled(True)
rng = np.random.RandomState(20240607)
records = []


def put(name, t):
    a = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    # a copy: numpy views of buffers updated in place later (running stats) would alias
    records.append((name, np.array(a, dtype=np.float32, order="C", copy=True)))


def randn(*shape, scale=1.0, offset=0.0):
    return torch.tensor(rng.standard_normal(shape) * scale + offset, dtype=torch.float32)


def leaf(t):
    return t.clone().requires_grad_(True)


# ---- group norm: 3 groups of 2 channels, and VQGAN's 32 groups ----
for tag, shape, groups in (("gn", (2, 6, 3, 5), 3), ("gn32", (1, 64, 4, 3), 32)):
    x, w, b = randn(*shape, scale=1.5, offset=0.3), randn(shape[1]), randn(shape[1])
    gy = randn(*shape)
    xl, wl, bl = leaf(x), leaf(w), leaf(b)
    y = torch.nn.functional.group_norm(xl, groups, wl, bl, eps=1e-6)
    y.backward(gy)
    for n, t in (("x", x), ("w", w), ("b", b), ("gy", gy), ("y", y), ("gx", xl.grad), ("gw", wl.grad),
                 ("gb", bl.grad)):
        put(f"{tag}.{n}", t)

# ---- layer norm over the last dim, GPT's eps ----
x, w, b, gy = randn(3, 4, 7, scale=2.0, offset=-0.7), randn(7), randn(7), randn(3, 4, 7)
xl, wl, bl = leaf(x), leaf(w), leaf(b)
y = torch.nn.functional.layer_norm(xl, (7,), wl, bl, eps=1e-5)
y.backward(gy)
for n, t in (("x", x), ("w", w), ("b", b), ("gy", gy), ("y", y), ("gx", xl.grad), ("gw", wl.grad),
             ("gb", bl.grad)):
    put(f"ln.{n}", t)

# ---- batch norm: BatchNorm2d(3), eps 1e-5, momentum 0.1; a training call, then eval ----
bn = torch.nn.BatchNorm2d(3, eps=1e-5, momentum=0.1)
x, gy = randn(4, 3, 2, 5, scale=2.0, offset=0.5), randn(4, 3, 2, 5)
with torch.no_grad():
    bn.weight.copy_(randn(3))
    bn.bias.copy_(randn(3))
    bn.running_mean.copy_(randn(3, scale=0.5))
    bn.running_var.copy_(torch.tensor(rng.uniform(0.5, 2.0, 3), dtype=torch.float32))
for n, t in (("x", x), ("w", bn.weight), ("b", bn.bias), ("rm", bn.running_mean), ("rv", bn.running_var),
             ("gy", gy)):
    put(f"bn.{n}", t)
bn.train()
xl = leaf(x)
y = bn(xl)
y.backward(gy)
for n, t in (("y", y), ("gx", xl.grad), ("gw", bn.weight.grad), ("gb", bn.bias.grad),
             ("rm_after", bn.running_mean), ("rv_after", bn.running_var)):
    put(f"bn.train.{n}", t)
bn.weight.grad = None
bn.bias.grad = None
bn.eval()
xl = leaf(x)
y = bn(xl)
y.backward(gy)
for n, t in (("y", y), ("gx", xl.grad), ("gw", bn.weight.grad), ("gb", bn.bias.grad)):
    put(f"bn.eval.{n}", t)

# ---- softmax / log_softmax along dim 1 with -inf entries (no slice all -inf: PyTorch gives NaN) ----
x = randn(3, 4, 5, scale=2.0)
x[0, 1, 2] = x[0, 3, 2] = x[2, 0, 4] = x[1, 2, 0] = -math.inf
gy = randn(3, 4, 5)
put("sm.x", x)
put("sm.gy", gy)
for tag, fn in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
    xl = leaf(x)
    y = fn(xl, 1)
    y.backward(gy)
    put(f"sm.{tag}.y", y)
    put(f"sm.{tag}.gx", xl.grad)

# ---- attention as minGPT computes it: mask = tril(ones), top-left n_unmasked block set ----
B, H, T, hs, block, nu = 2, 2, 9, 4, 12, 3
q, k, v, gy = randn(B, H, T, hs), randn(B, H, T, hs), randn(B, H, T, hs), randn(B, H, T, hs)
mask = torch.tril(torch.ones(block, block))
mask[:nu, :nu] = 1
ql, kl, vl = leaf(q), leaf(k), leaf(v)
att = (ql @ kl.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
att = att.masked_fill(mask[:T, :T] == 0, float("-inf"))
y = torch.softmax(att, dim=-1) @ vl
y.backward(gy)
for n, t in (("q", q), ("k", k), ("v", v), ("gy", gy), ("y", y), ("gq", ql.grad), ("gk", kl.grad),
             ("gv", vl.grad)):
    put(f"gpt.{n}", t)
# forward_with_past: one new token per sequence sees every cached key, no mask
qn = randn(B, H, 1, hs)
y = torch.softmax((qn @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs)), dim=-1) @ v
put("gpt.past.q", qn)
put("gpt.past.y", y)

# the VQGAN AttnBlock: q, k, v [B, C, H, W] flattened; w[b, i, j] = q_i . k_j * C^-1/2, softmax over j
Bv, C, Hh, Ww = 2, 8, 3, 4
q, k, v, gy = randn(Bv, C, Hh, Ww), randn(Bv, C, Hh, Ww), randn(Bv, C, Hh, Ww), randn(Bv, C, Hh * Ww)
ql, kl, vl = leaf(q), leaf(k), leaf(v)
qf = ql.reshape(Bv, C, Hh * Ww).permute(0, 2, 1)      # [B, HW, C]
kf = kl.reshape(Bv, C, Hh * Ww)                       # [B, C, HW]
wgt = torch.softmax(torch.bmm(qf, kf) * (int(C) ** (-0.5)), dim=2)
h = torch.bmm(vl.reshape(Bv, C, Hh * Ww), wgt.permute(0, 2, 1))   # [B, C, HW]
h.backward(gy)
for n, t in (("q", q), ("k", k), ("v", v), ("gy", gy), ("h", h), ("gq", ql.grad), ("gk", kl.grad),
             ("gv", vl.grad)):
    put(f"vq.{n}", t)

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "norm", "torch_ref.bin")
os.makedirs(os.path.dirname(out), exist_ok=True)
with open(out + ".tmp", "wb") as f:
    f.write(b"TTREF1\0\0")
    f.write(struct.pack("<I", len(records)))
    for name, a in records:
        nb = name.encode()
        f.write(struct.pack("<I", len(nb)))
        f.write(nb)
        f.write(struct.pack("<I", a.ndim))
        f.write(struct.pack(f"<{a.ndim}q", *a.shape))
        f.write(a.astype("<f4").tobytes())
os.replace(out + ".tmp", out)
print(f"wrote {len(records)} tensors to {out} with torch {torch.__version__}")
