#!/usr/bin/env python3
"""Generates tests/data/optim/reference.safetensors for tests/lua/test_optim.lua:
torch.optim.AdamW and torch.optim.Adam runs whose parameters, gradients and
results the Lua optimizer must reproduce.

Run from the repository root with a Python that has torch and numpy:
    python3 tests/data/gen_optim.py

Case "gpt": AdamW, betas (0.9, 0.95), eps 1e-8, lr 1e-2, two parameter groups as
the official Net2NetTransformer builds them (weight decay 0.01 on Linear weights,
none on biases, LayerNorm, tok_emb, pos_emb). Three steps with given gradients;
in step 2 `head.weight` has no gradient (PyTorch skips it, its step count lags).

Case "ae": Adam, betas (0.5, 0.9), lr 3e-3, L2 weight decay 0.1 on the first
group only; each step accumulates two micro-batches of loss = sum(p * c_k) / 2,
so the gradient is (c_1 + c_2) / 2.

Tensor names: <case>.init.<param>, <case>.grad<step>[.<micro>].<param>,
<case>.after<step>.<param>, <case>.exp_avg.<param>, <case>.exp_avg_sq.<param>,
<case>.step.<param> (i64 scalar).
"""
import json
import pathlib
import struct

import numpy as np
import torch

torch.manual_seed(0)
out = {}


def put(name, t):
    out[name] = t.detach().clone().contiguous()


def gpt_case():
    shapes = {
        "blocks.0.attn.key.weight": (3, 4), "blocks.0.attn.key.bias": (3,), "blocks.0.ln1.weight": (4,),
        "blocks.0.mlp.2.weight": (4, 6), "tok_emb.weight": (5, 4), "pos_emb": (1, 2, 4), "head.weight": (5, 4),
    }
    decay = {"blocks.0.attn.key.weight", "blocks.0.mlp.2.weight", "head.weight"}
    ps = {k: torch.nn.Parameter(torch.randn(*s)) for k, s in shapes.items()}
    for k, p in ps.items():
        put("gpt.init." + k, p)
    groups = [{"params": [ps[k] for k in shapes if k in decay], "weight_decay": 0.01},
              {"params": [ps[k] for k in shapes if k not in decay], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-2, betas=(0.9, 0.95), eps=1e-8)
    for step in (1, 2, 3):
        opt.zero_grad(set_to_none=True)
        for k, p in ps.items():
            if step == 2 and k == "head.weight":
                continue
            g = torch.randn_like(p) * (0.5 + step)
            p.grad = g.clone()
            put("gpt.grad%d.%s" % (step, k), g)
        opt.step()
        for k, p in ps.items():
            put("gpt.after%d.%s" % (step, k), p)
    for k, p in ps.items():
        st = opt.state[p]
        put("gpt.exp_avg." + k, st["exp_avg"])
        put("gpt.exp_avg_sq." + k, st["exp_avg_sq"])
        out["gpt.step." + k] = torch.tensor(int(st["step"]), dtype=torch.int64)


def ae_case():
    shapes = {"encoder.conv_in.weight": (4, 3, 3, 3), "encoder.conv_in.bias": (4,), "loss.discriminator.w": (2, 5)}
    ps = {k: torch.nn.Parameter(torch.randn(*s) * 0.3) for k, s in shapes.items()}
    for k, p in ps.items():
        put("ae.init." + k, p)
    names = list(shapes)
    groups = [{"params": [ps[names[0]], ps[names[1]]], "weight_decay": 0.1}, {"params": [ps[names[2]]]}]
    opt = torch.optim.Adam(groups, lr=3e-3, betas=(0.5, 0.9), eps=1e-8)
    for step in (1, 2, 3):
        opt.zero_grad(set_to_none=True)
        for micro in (1, 2):
            loss = 0
            for k, p in ps.items():
                c = torch.randn_like(p)
                put("ae.grad%d.%d.%s" % (step, micro, k), c)
                loss = loss + (p * c).sum()
            (loss / 2).backward()
        opt.step()
        for k, p in ps.items():
            put("ae.after%d.%s" % (step, k), p)
    for k, p in ps.items():
        st = opt.state[p]
        put("ae.exp_avg." + k, st["exp_avg"])
        put("ae.exp_avg_sq." + k, st["exp_avg_sq"])
        out["ae.step." + k] = torch.tensor(int(st["step"]), dtype=torch.int64)


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name]
        a = t.numpy()
        dt = {np.float32: "F32", np.int64: "I64"}[a.dtype.type]
        b = a.tobytes()
        header[name] = {"dtype": dt, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(h)) + h + b"".join(blobs))


gpt_case()
ae_case()
save_safetensors("tests/data/optim/reference.safetensors", out)
print("wrote tests/data/optim/reference.safetensors (%d tensors)" % len(out))
