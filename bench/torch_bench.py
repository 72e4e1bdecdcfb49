#!/usr/bin/env python3
"""torch_bench.py — PyTorch on the same shapes as bench/*.lua, for a timing
comparison on the same machine (bench/gpu_check.sh phase=2 runs both).

The networks are written here with torch.nn layers in the shapes of the
paper's configurations, random weights, fp32 with TF32 off (as our CUDA
backend by default; the VQGAN also in bf16 with --dtype bf16):
  vqgan        ImageNet f16 VQGAN: ch 128, ch_mult 1,1,2,2,4, 2 res blocks,
               attention at 16, z 256, 1024 codes; encode and decode times
  gpt          FacesHQ minGPT: vocab 1024, block 512, 24 layers, 16 heads,
               width 1024; KV-cached sampling (top-k 250), tokens per second
  highres      the same GPT on a 32x32 grid with a 16x16 window and 256
               conditioning tokens, one full forward per cell (no cache)
  train_step   one VQGAN step (L1 + codebook loss, Adam) and one GPT step
               (cross-entropy on `tokens` tokens, AdamW)

Each prints one JSON line, {"impl": "torch", ...}, with the keys of the
matching bench/*.lua line.

  python3 torch_bench.py --what vqgan,gpt,highres,train_step [--device cuda] [--size 256]
      [--batch 1] [--tokens 256] [--reps 5] [--cells 64] [--precision fp32|bf16] [--threads N]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def norm(c):
    return nn.GroupNorm(32, c, eps=1e-6, affine=True)


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.n1, self.c1 = norm(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.n2, self.c2 = norm(cout), nn.Conv2d(cout, cout, 3, 1, 1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        h = self.c1(F.silu(self.n1(x)))
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


class Attn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.n = norm(c)
        self.q, self.k, self.v, self.o = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        b, c, h, w = x.shape
        y = self.n(x)
        q = self.q(y).reshape(b, c, h * w).transpose(1, 2)      # [B, HW, C]
        k = self.k(y).reshape(b, c, h * w)                      # [B, C, HW]
        v = self.v(y).reshape(b, c, h * w)
        a = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=2)   # [B, HW, HW]
        out = torch.bmm(v, a.transpose(1, 2)).reshape(b, c, h, w)
        return x + self.o(out)


class Down(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Up(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class VQGAN(nn.Module):
    def __init__(self, ch=128, mult=(1, 1, 2, 2, 4), nres=2, attn_res=16, res=256, z=256, codes=1024):
        super().__init__()
        enc = [nn.Conv2d(3, ch, 3, 1, 1)]
        c, r = ch, res
        for i, m in enumerate(mult):
            for _ in range(nres):
                enc.append(ResBlock(c, ch * m))
                c = ch * m
                if r == attn_res:
                    enc.append(Attn(c))
            if i != len(mult) - 1:
                enc.append(Down(c))
                r //= 2
        enc += [ResBlock(c, c), Attn(c), ResBlock(c, c), norm(c), nn.SiLU(), nn.Conv2d(c, z, 3, 1, 1),
                nn.Conv2d(z, z, 1)]
        self.encoder = nn.Sequential(*enc)
        self.codebook = nn.Parameter(torch.randn(codes, z) / codes)
        c = ch * mult[-1]
        dec = [nn.Conv2d(z, z, 1), nn.Conv2d(z, c, 3, 1, 1), ResBlock(c, c), Attn(c), ResBlock(c, c)]
        for i, m in reversed(list(enumerate(mult))):
            for _ in range(nres + 1):
                dec.append(ResBlock(c, ch * m))
                c = ch * m
                if r == attn_res:
                    dec.append(Attn(c))
            if i != 0:
                dec.append(Up(c))
                r *= 2
        dec += [norm(c), nn.SiLU(), nn.Conv2d(c, 3, 3, 1, 1)]
        self.decoder = nn.Sequential(*dec)

    def encode(self, x):
        h = self.encoder(x)                                          # [B, z, h, w]
        b, zc, hh, ww = h.shape
        flat = h.permute(0, 2, 3, 1).reshape(-1, zc)                 # [B*h*w, z]
        d = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ self.codebook.t()
             + self.codebook.pow(2).sum(1)[None, :])
        idx = d.argmin(1)
        q = self.codebook[idx].reshape(b, hh, ww, zc).permute(0, 3, 1, 2)
        qloss = F.mse_loss(q, h.detach()) + 0.25 * F.mse_loss(q.detach(), h)   # codebook + commitment (beta 0.25)
        return h + (q - h).detach(), qloss

    def decode(self, q):
        return self.decoder(q)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x, cache=None):
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)
        q, k, v = (u.reshape(b, t, self.heads, d // self.heads).transpose(1, 2) for u in (q, k, v))
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        causal = cache is None or t > 1
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, d))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, vocab=1024, block=512, layers=24, heads=16, width=1024):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, width), nn.Parameter(torch.zeros(1, block, width))
        self.blocks = nn.ModuleList(Block(width, heads) for _ in range(layers))
        self.ln, self.head = nn.LayerNorm(width), nn.Linear(width, vocab, bias=False)

    def forward(self, idx, caches=None, offset=0):
        t = idx.shape[1]
        x = self.tok(idx) + self.pos[:, offset:offset + t]
        for i, blk in enumerate(self.blocks):
            x = blk(x, caches[i] if caches is not None else None)
        return self.head(self.ln(x))                                 # [B, T, V]


def build(cls, dev):
    """A module with its parameters made on dev (on the CPU first where torch cannot)."""
    if hasattr(torch, "get_default_device"):
        with dev:
            return cls()
    return cls().to(dev)


def top_k_sample(logits, k, gen):
    v, ix = torch.topk(logits, k, dim=-1)
    p = torch.softmax(v, dim=-1)
    return ix.gather(-1, torch.multinomial(p, 1, generator=gen))


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def median(ts):
    ts = sorted(ts)
    n = len(ts)
    return ts[n // 2] if n % 2 else 0.5 * (ts[n // 2 - 1] + ts[n // 2])


def emit(d):
    print(json.dumps(d), flush=True)


def bench_vqgan(a, dev):
    m = build(VQGAN, dev).eval()
    x = torch.rand(a.batch, 3, a.size, a.size, device=dev) * 2 - 1
    if a.precision == "bf16":   # PyTorch's own bf16 mode: weights and activations
        m, x = m.to(torch.bfloat16), x.to(torch.bfloat16)
    enc, dec = [], []
    with torch.no_grad():
        m.decode(m.encode(x)[0])
        sync(dev)
        for _ in range(a.reps):
            t0 = time.perf_counter()
            q = m.encode(x)[0]
            sync(dev)
            t1 = time.perf_counter()
            m.decode(q)
            sync(dev)
            enc.append(t1 - t0)
            dec.append(time.perf_counter() - t1)
    emit({"impl": "torch", "bench": "vqgan", "size": a.size, "batch": a.batch, "device": dev.type,
          "precision": a.precision, "threads": torch.get_num_threads(), "encode_s": median(enc),
          "decode_s": median(dec)})


def bench_gpt(a, dev):
    m = build(GPT, dev).eval()
    gen = torch.Generator(device=dev).manual_seed(0)

    def sample(steps):
        caches = [dict() for _ in m.blocks]
        idx = torch.zeros(a.batch, 1, dtype=torch.long, device=dev)
        for s in range(steps):
            logits = m(idx[:, -1:], caches, offset=s)[:, -1]
            idx = torch.cat([idx, top_k_sample(logits, 250, gen)], 1)
        return idx

    with torch.no_grad():
        sample(4)
        sync(dev)
        t0 = time.perf_counter()
        sample(a.tokens)
        sync(dev)
        dt = time.perf_counter() - t0
    emit({"impl": "torch", "bench": "gpt", "batch": a.batch, "tokens": a.tokens, "device": dev.type, "s": dt,
          "tok_per_s": a.tokens * a.batch / dt})


def bench_highres(a, dev, G=32, W=16):
    m = build(GPT, dev).eval()
    gen = torch.Generator(device=dev).manual_seed(0)
    cond = torch.randint(0, 1024, (1, G, G), device=dev, generator=gen)
    grid = torch.zeros(1, G, G, dtype=torch.long, device=dev)
    cells = min(a.cells, G * G) if a.cells else G * G
    with torch.no_grad():
        sync(dev)
        t0 = time.perf_counter()
        for cell in range(G * G - cells, G * G):
            i, j = divmod(cell, G)
            top, left = min(max(i - W // 2, 0), G - W), min(max(j - W // 2, 0), G - W)
            c = cond[:, top:top + W, left:left + W].reshape(1, -1)               # [1, W*W]
            img = grid[:, top:top + W, left:left + W].reshape(1, -1)
            upto = (i - top) * W + (j - left)
            logits = m(torch.cat([c, img[:, :upto]], 1))[:, -1]
            grid[0, i, j] = top_k_sample(logits, 100, gen)[0, 0]
        sync(dev)
        dt = time.perf_counter() - t0
    emit({"impl": "torch", "bench": "highres", "grid": G, "window": W, "cells": cells, "device": dev.type, "s": dt,
          "s_per_token": dt / cells})


def bench_train_step(a, dev):
    def time_steps(step):
        step()
        sync(dev)
        ts = []
        for _ in range(a.reps):
            t0 = time.perf_counter()
            step()
            sync(dev)
            ts.append(time.perf_counter() - t0)
        return median(ts)

    m = build(VQGAN, dev).train()
    opt = torch.optim.Adam(m.parameters(), lr=4.5e-6, betas=(0.5, 0.9))
    x = torch.rand(a.batch, 3, a.size, a.size, device=dev) * 2 - 1
    out = {}

    def vq_step():
        q, qloss = m.encode(x)
        loss = (x - m.decode(q)).abs().mean() + qloss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        out["loss"] = loss.item()

    s = time_steps(vq_step)
    emit({"impl": "torch", "bench": "train_step", "what": "vqgan", "size": a.size, "batch": a.batch,
          "device": dev.type, "s": s, "loss": out["loss"]})
    del m, opt
    g = build(GPT, dev).train()
    opt = torch.optim.AdamW(g.parameters(), lr=4.5e-6, betas=(0.9, 0.95))
    toks = torch.randint(0, 1024, (a.batch, a.tokens + 1), device=dev)

    def gpt_step():
        logits = g(toks[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), toks[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        out["loss"] = loss.item()

    s = time_steps(gpt_step)
    emit({"impl": "torch", "bench": "train_step", "what": "gpt", "tokens": a.tokens, "batch": a.batch,
          "device": dev.type, "s": s, "loss": out["loss"]})


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--what", default="vqgan,gpt,highres,train_step")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--tokens", type=int, default=256)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--cells", type=int, default=64)
    p.add_argument("--precision", "--dtype", dest="precision", default="fp32", choices=["fp32", "bf16"], help="vqgan: fp32, or model.to(bfloat16)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device(a.device)
    emit({"impl": "torch", "bench": "info", "torch": torch.__version__, "device": dev.type,
          "name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
          "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None})
    for w in a.what.split(","):
        {"vqgan": bench_vqgan, "gpt": bench_gpt, "highres": bench_highres, "train_step": bench_train_step}[w](a, dev)


if __name__ == "__main__":
    main()
