#!/usr/bin/env python3
"""Writes tests/data/train/*.safetensors: PyTorch (fp32, CPU) references for the
first-stage training losses, for tests/lua/test_loss_plugins.lua.

  lpips_ref.safetensors     LPIPS values and input gradients on random images
                            (odd, non-square sizes; a 1-channel case), computed
                            with the LPIPS weights of the tiny fixture checkpoint
                            (../shared/fixtures/tiny/vqgan.ckpt, loss.perceptual_loss.*).
                            Skipped when the fixtures are absent.
  patchgan_bn.safetensors   NLayerDiscriminator with BatchNorm: weights (w.*), a
                            training-mode forward (logits, running statistics after
                            it, gradients of sum(logits * R)) and an eval-mode forward.
  patchgan_an.safetensors   NLayerDiscriminator with ActNorm: the data-dependent
                            initialisation on the first training batch, a second
                            training forward and its gradients.
  dloss_ref.safetensors     hinge and vanilla discriminator losses of random logits.

LPIPS and the discriminator are written here from their definitions with
torch.nn.functional (REFERENCE §3.3-3.4), independently of the official code.

Run: /usr/bin/python3 tests/data/gen_train.py   (from the source root)
"""
import json
import os
import struct

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "train")
FIXTURE = os.path.join(HERE, "..", "..", "..", "shared", "fixtures", "tiny", "vqgan.ckpt")
rng = np.random.RandomState(20240611)


def save_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for k in sorted(tensors):
        t = tensors[k].detach().contiguous().cpu()
        if t.dtype == torch.float32:
            dt, b = "F32", t.numpy().tobytes()
        elif t.dtype == torch.int64:
            dt, b = "I64", t.numpy().tobytes()
        elif t.dtype == torch.uint8:
            dt, b = "U8", t.numpy().tobytes()
        else:
            raise TypeError(k)
        header[k] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def uniform(*shape, lo=-1.0, hi=1.0):
    return torch.tensor(rng.uniform(lo, hi, shape), dtype=torch.float32)


def randn(*shape, scale=1.0, offset=0.0):
    return torch.tensor(rng.standard_normal(shape) * scale + offset, dtype=torch.float32)


# ---------------------------------------------------------------- LPIPS
VGG = [(1, 0, False), (1, 2, False), (2, 5, True), (2, 7, False), (3, 10, True), (3, 12, False),
       (3, 14, False), (4, 17, True), (4, 19, False), (4, 21, False), (5, 24, True), (5, 26, False),
       (5, 28, False)]


def lpips(sd, x, y):
    """sd: loss.perceptual_loss.* with the prefix stripped; x, y [B, C, H, W]."""
    def feats(z):
        h = (z - sd["scaling_layer.shift"]) / sd["scaling_layer.scale"]
        out = []
        for i, (s, idx, pool) in enumerate(VGG):
            if pool:
                h = F.max_pool2d(h, 2, 2)
            h = F.relu(F.conv2d(h, sd["net.slice%d.%d.weight" % (s, idx)], sd["net.slice%d.%d.bias" % (s, idx)],
                                padding=1))
            if i == len(VGG) - 1 or VGG[i + 1][0] != s:
                out.append(h)
        return out

    def unit(f):
        return f / (torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + 1e-10)

    val = None
    for k, (a, b) in enumerate(zip(feats(x), feats(y))):
        d = (unit(a) - unit(b)) ** 2
        r = F.conv2d(d, sd["lin%d.model.1.weight" % k]).mean([2, 3], keepdim=True)
        val = r if val is None else val + r
    return val


def gen_lpips():
    if not os.path.exists(FIXTURE):
        print("fixtures absent: lpips_ref.safetensors not written")
        return
    ck = torch.load(FIXTURE, map_location="cpu")
    pre = "loss.perceptual_loss."
    sd = {k[len(pre):]: v.float() for k, v in ck["state_dict"].items() if k.startswith(pre)}
    out = {}
    cases = {"a": (2, 3, 35, 21), "b": (1, 1, 16, 24), "c": (1, 3, 32, 32)}
    for name, shape in cases.items():
        x = uniform(*shape).requires_grad_(True)
        y = (x.detach() + 0.3 * randn(*shape)).clamp(-1, 1).requires_grad_(True)
        v = lpips(sd, x, y)
        w = torch.arange(1, shape[0] + 1, dtype=torch.float32).view(-1, 1, 1, 1)
        (v * w).sum().backward()
        out.update({name + ".x": x, name + ".y": y, name + ".val": v, name + ".gx": x.grad, name + ".gy": y.grad})
    save_safetensors(os.path.join(OUT, "lpips_ref.safetensors"), out)


# ---------------------------------------------------------------- PatchGAN
def patchgan_layout(input_nc, ndf, n_layers, actnorm):
    """[(conv idx, cin, cout, stride, bias, norm idx or None, lrelu)] of the `main` sequence."""
    L, idx, mult = [(0, input_nc, ndf, 2, True, None, True)], 2, 1
    for n in range(1, n_layers):
        prev, mult = mult, min(2 ** n, 8)
        L.append((idx, ndf * prev, ndf * mult, 2, actnorm, idx + 1, True))
        idx += 3
    prev, mult = mult, min(2 ** n_layers, 8)
    L.append((idx, ndf * prev, ndf * mult, 1, actnorm, idx + 1, True))
    idx += 3
    L.append((idx, ndf * mult, 1, 1, True, None, False))
    return L


def patchgan_weights(layout, actnorm):
    w = {}
    for (ci, cin, cout, _s, bias, ni, _a) in layout:
        bound = 1.0 / np.sqrt(cin * 16)
        w["main.%d.weight" % ci] = uniform(cout, cin, 4, 4, lo=-bound, hi=bound)
        if bias:
            w["main.%d.bias" % ci] = uniform(cout, lo=-bound, hi=bound)
        if ni is None:
            continue
        if actnorm:
            w["main.%d.loc" % ni] = torch.zeros(1, cout, 1, 1)
            w["main.%d.scale" % ni] = torch.ones(1, cout, 1, 1)
            w["main.%d.initialized" % ni] = torch.tensor(0, dtype=torch.uint8)
        else:
            w["main.%d.weight" % ni] = randn(cout, scale=0.2, offset=1.0)
            w["main.%d.bias" % ni] = randn(cout, scale=0.1)
            w["main.%d.running_mean" % ni] = randn(cout, scale=0.1)
            w["main.%d.running_var" % ni] = uniform(cout, lo=0.5, hi=1.5)
            w["main.%d.num_batches_tracked" % ni] = torch.tensor(7, dtype=torch.int64)
    return w


def patchgan(layout, p, x, training, actnorm):
    """p: parameters (leaves) and buffers, updated in place like the modules do."""
    h = x
    for (ci, _cin, _cout, s, bias, ni, act) in layout:
        h = F.conv2d(h, p["main.%d.weight" % ci], p.get("main.%d.bias" % ci), stride=s, padding=1)
        if ni is not None:
            if actnorm:
                if training and int(p["main.%d.initialized" % ni]) == 0:
                    with torch.no_grad():
                        flat = h.permute(1, 0, 2, 3).reshape(h.shape[1], -1)
                        p["main.%d.loc" % ni].copy_(-flat.mean(1).view(1, -1, 1, 1))
                        p["main.%d.scale" % ni].copy_(1.0 / (flat.std(1).view(1, -1, 1, 1) + 1e-6))
                        p["main.%d.initialized" % ni].fill_(1)
                h = p["main.%d.scale" % ni] * (h + p["main.%d.loc" % ni])
            else:
                h = F.batch_norm(h, p["main.%d.running_mean" % ni], p["main.%d.running_var" % ni],
                                 p["main.%d.weight" % ni], p["main.%d.bias" % ni], training, 0.1, 1e-5)
                if training:
                    p["main.%d.num_batches_tracked" % ni] += 1
        if act:
            h = F.leaky_relu(h, 0.2)
    return h


def leaves(w):
    return {k: (v.clone().requires_grad_(True) if v.dtype == torch.float32 and not k.endswith(("running_mean",
            "running_var")) else v.clone()) for k, v in w.items()}


def gen_patchgan_bn():
    layout = patchgan_layout(3, 4, 3, False)
    w = patchgan_weights(layout, False)
    out = {"w." + k: v for k, v in w.items()}
    p = leaves(w)
    x = uniform(2, 3, 40, 36).requires_grad_(True)
    logits = patchgan(layout, p, x, True, False)
    R = randn(*logits.shape)
    (logits * R).sum().backward()
    out.update({"x": x, "R": R, "train.logits": logits, "train.gx": x.grad})
    for k, v in p.items():
        if v.requires_grad:
            out["train.g." + k] = v.grad
        else:
            out["after." + k] = v
    x2 = uniform(3, 3, 37, 42)
    with torch.no_grad():
        out.update({"x2": x2, "eval.logits": patchgan(layout, p, x2, False, False)})
    save_safetensors(os.path.join(OUT, "patchgan_bn.safetensors"), out)


def gen_patchgan_an():
    layout = patchgan_layout(1, 8, 2, True)
    w = patchgan_weights(layout, True)
    out = {"w." + k: v for k, v in w.items()}
    p = leaves(w)
    x1 = uniform(3, 1, 33, 30)
    with torch.no_grad():
        out.update({"x1": x1, "init.logits": patchgan(layout, p, x1, True, True)})
    for k, v in p.items():
        out["init." + k] = v.detach().clone()
    x2 = uniform(2, 1, 30, 34).requires_grad_(True)
    logits = patchgan(layout, p, x2, True, True)
    R = randn(*logits.shape)
    (logits * R).sum().backward()
    out.update({"x2": x2, "R": R, "train.logits": logits, "train.gx": x2.grad})
    for k, v in p.items():
        if v.requires_grad:
            out["train.g." + k] = v.grad
    save_safetensors(os.path.join(OUT, "patchgan_an.safetensors"), out)


def gen_dloss():
    lr, lf = randn(2, 1, 5, 6, scale=1.5), randn(2, 1, 5, 6, scale=1.5, offset=0.3)
    hinge = 0.5 * (F.relu(1.0 - lr).mean() + F.relu(1.0 + lf).mean())
    vanilla = 0.5 * (F.softplus(-lr).mean() + F.softplus(lf).mean())
    save_safetensors(os.path.join(OUT, "dloss_ref.safetensors"),
                     {"real": lr, "fake": lf, "hinge": hinge, "vanilla": vanilla})


if __name__ == "__main__":
    torch.manual_seed(0)
    os.makedirs(OUT, exist_ok=True)
    gen_lpips()
    gen_patchgan_bn()
    gen_patchgan_an()
    gen_dloss()
