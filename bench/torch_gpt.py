"""bench/torch_gpt.py — the PyTorch counterpart of bench/gpt.lua, for the speed
table: the same minGPT shapes (FacesHQ config: vocab 1024, block 512, 24 layers,
16 heads, width 1024), random weights, KV-cached decoding from one token with
top-k 250 sampling at temperature 1, in fp32 or bf16 (model.to(torch.bfloat16)).

What is timed: `tokens` decoding steps after 4 warm-up steps, each step one
forward of the new token(s) through all layers (q, k, v, proj, fc, out linear
layers as in minGPT, attention over the preallocated cache with
F.scaled_dot_product_attention) plus the sampling, under torch.inference_mode().
Prints one JSON line like bench/gpt.lua.

    python3 bench/torch_gpt.py [--batch 1] [--tokens 256] [--dtype fp32|bf16] [--threads 2]
"""
import argparse
import json
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class Block(nn.Module):
    def __init__(self, E, H, T):
        super().__init__()
        self.H, self.d = H, E // H
        self.ln1, self.ln2 = nn.LayerNorm(E), nn.LayerNorm(E)
        self.key, self.query, self.value, self.proj = (nn.Linear(E, E) for _ in range(4))
        self.mlp = nn.Sequential(nn.Linear(E, 4 * E), nn.GELU(), nn.Linear(4 * E, E))

    def forward(self, x, kc, vc, pos):
        B, T, E = x.shape
        h = self.ln1(x)
        q = self.query(h).view(B, T, self.H, self.d).transpose(1, 2)
        kc[:, :, pos:pos + T] = self.key(h).view(B, T, self.H, self.d).transpose(1, 2)
        vc[:, :, pos:pos + T] = self.value(h).view(B, T, self.H, self.d).transpose(1, 2)
        k, v = kc[:, :, :pos + T], vc[:, :, :pos + T]
        y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1 and pos == 0)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, E))
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    def __init__(self, V, T, L, H, E):
        super().__init__()
        self.tok_emb = nn.Embedding(V, E)
        self.pos_emb = nn.Parameter(torch.zeros(1, T, E))
        self.blocks = nn.ModuleList(Block(E, H, T) for _ in range(L))
        self.ln_f = nn.LayerNorm(E)
        self.head = nn.Linear(E, V, bias=False)
        self.cfg = (T, L, H, E)

    def new_cache(self, B, dtype):
        T, L, H, E = self.cfg
        return [(torch.zeros(B, H, T, E // H, dtype=dtype), torch.zeros(B, H, T, E // H, dtype=dtype)) for _ in range(L)]

    def forward(self, idx, cache, pos):
        x = self.tok_emb(idx) + self.pos_emb[:, pos:pos + idx.shape[1]]
        for b, (kc, vc) in zip(self.blocks, cache):
            x = b(x, kc, vc, pos)
        return self.head(self.ln_f(x[:, -1:]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--layers", type=int, default=24)
    ap.add_argument("--width", type=int, default=1024)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    model = GPT(1024, 512, a.layers, 16, a.width).eval().to(dt)
    params = sum(p.numel() for p in model.parameters())

    def sample(steps):
        cache = model.new_cache(a.batch, dt)
        tok = torch.zeros(a.batch, 1, dtype=torch.long)
        for pos in range(steps):
            logits = model(tok, cache, pos)[:, -1].float()
            v, i = torch.topk(logits, 250)
            p = F.softmax(v, -1)
            tok = i.gather(-1, torch.multinomial(p, 1))

    with torch.inference_mode():
        sample(4)
        t0 = time.perf_counter()
        sample(a.tokens)
        s = time.perf_counter() - t0
    print(json.dumps({"bench": "torch_gpt", "torch": torch.__version__, "dtype": a.dtype, "batch": a.batch,
                      "tokens": a.tokens, "threads": torch.get_num_threads(), "params": params,
                      "isa": torch.backends.cpu.get_cpu_capability(), "s": round(s, 3),
                      "tok_per_s": round(a.tokens * a.batch / s, 3)}))


if __name__ == "__main__":
    main()
