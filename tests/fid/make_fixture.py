#!/usr/bin/env python3
"""make_fixture.py — the FID / Inception Score parity fixture, made by the reference tools.

A development tool, never a dependency of the product. It needs (outside the project):
  apt-get install python3-torch python3-torchvision python3-scipy python3-numpy python3-pil python3-tqdm
  pip install --break-system-packages --no-deps pytorch-fid torch-fidelity

No Inception weights can be downloaded here, so the network gets the project's own
deterministic random weights: `taming run tests/fid/inception_weights.lua` writes the
feature/inception plugin's initialisation (seed 15) as safetensors, keyed like
pt_inception-2015-12-05-6726825d.pth. pytorch-fid builds its network exactly as it
does for FID (fid_inception_v3: FIDInceptionA/C/E_1/E_2) with those weights instead
of the downloaded ones.

Image sets: Fashion-MNIST test images (Debian's dataset-fashion-mnist), written as
8-bit grayscale PNGs: real = images [0, 20), fake = images [1000, 1020). pytorch-fid
reads them as it reads any folder (PIL convert('RGB'), ToTensor, bilinear resize to
299, 2x - 1). The FID is pytorch-fid's calculate_frechet_distance; the Inception
Score is torch-fidelity's isc_features_to_metric over the fake set's unbiased logits
(pool3 . fc.weight^T), 10 splits, with its default shuffle (RandomState(2020)) and
without it (the order of the original TensorFlow script).

Writes tests/data/fid/: reference.json (FID, IS, sizes, the seed),
pool_real4.npy (the pool3 features of the first 4 real images, float32 [4, 2048]) and
tiny_stats_compressed.npz (a 3-feature mu/sigma written by np.savez_compressed).

  python3 tests/fid/make_fixture.py [--taming host/taming] [--out tests/data/fid]
"""
import argparse
import gzip
import json
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
from PIL import Image

import pytorch_fid.inception as pfi
from pytorch_fid.fid_score import calculate_frechet_distance, get_activations
from torch_fidelity.metric_isc import isc_features_to_metric

SEED = 15
REAL = (0, 20)
FAKE = (1000, 1020)
MNIST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"


def load_safetensors(path):
    dtypes = {"F32": np.float32, "I64": np.int64, "F64": np.float64}
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        a, b = v["data_offsets"]
        arr = np.frombuffer(data[a:b], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
        out[k] = torch.from_numpy(arr.copy())
    return out


def fashion_mnist(lo, hi):
    with gzip.open(MNIST, "rb") as f:
        raw = f.read()
    magic, n, h, w = struct.unpack(">IIII", raw[:16])
    assert magic == 2051
    imgs = np.frombuffer(raw[16:], dtype=np.uint8).reshape(n, h, w)
    return imgs[lo:hi]


def write_pngs(imgs, folder):
    os.makedirs(folder, exist_ok=True)
    files = []
    for i, im in enumerate(imgs):
        p = os.path.join(folder, "%05d.png" % i)
        Image.fromarray(im, mode="L").save(p)
        files.append(p)
    return files


def write_tiny_npz(out):
    """The deflated .npz check_metrics reads, as pytorch-fid's --save-stats writes one."""
    mu = np.array([0.5, -1.25, 3.0])
    sigma = np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.25], [0.0, 0.25, 3.0]])
    np.savez_compressed(os.path.join(out, "tiny_stats_compressed.npz"), mu=mu, sigma=sigma)


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap.add_argument("--taming", default=os.path.join(root, "host", "taming"))
    ap.add_argument("--out", default=os.path.join(root, "tests", "data", "fid"))
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    tmp = tempfile.mkdtemp(prefix="fid_fixture_")
    wpath = os.path.join(tmp, "inception.safetensors")
    subprocess.run([args.taming, "run", os.path.join(here, "inception_weights.lua"), "out=" + wpath,
                    "seed=%d" % SEED], check=True)
    sd = load_safetensors(wpath)

    # pytorch-fid's own construction, the weights file replaced by ours
    pfi.load_state_dict_from_url = lambda *a, **k: sd
    model = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                            normalize_input=True, use_fid_inception=True).eval()

    real = write_pngs(fashion_mnist(*REAL), os.path.join(tmp, "real"))
    fake = write_pngs(fashion_mnist(*FAKE), os.path.join(tmp, "fake"))
    act_r = get_activations(real, model, batch_size=8, dims=2048, device="cpu", num_workers=0)
    act_f = get_activations(fake, model, batch_size=8, dims=2048, device="cpu", num_workers=0)
    mu_r, sig_r = np.mean(act_r, axis=0), np.cov(act_r, rowvar=False)
    mu_f, sig_f = np.mean(act_f, axis=0), np.cov(act_f, rowvar=False)
    fid = float(calculate_frechet_distance(mu_r, sig_r, mu_f, sig_f))
    fid_self = float(calculate_frechet_distance(mu_r, sig_r, mu_r, sig_r))

    # torch-fidelity's logits_unbiased: the pool3 features times fc.weight^T, no bias
    logits = torch.from_numpy(act_f.astype(np.float32)) @ sd["fc.weight"].t()
    isc = isc_features_to_metric(logits, splits=10, shuffle=True, rng_seed=2020)
    isc_ordered = isc_features_to_metric(logits, splits=10, shuffle=False)

    os.makedirs(args.out, exist_ok=True)
    write_tiny_npz(args.out)
    np.save(os.path.join(args.out, "pool_real4.npy"), act_r[:4].astype(np.float32))
    ref = {
        "seed": SEED,
        "real": list(REAL), "fake": list(FAKE),
        "fid": fid,
        "fid_real_vs_real": fid_self,
        "is_mean": isc["inception_score_mean"], "is_std": isc["inception_score_std"],
        "is_mean_unshuffled": isc_ordered["inception_score_mean"],
        "is_std_unshuffled": isc_ordered["inception_score_std"],
        "pool_real_abs_max": float(np.abs(act_r).max()),
        "tools": "pytorch-fid %s, torch-fidelity %s, torch %s" % (
            __import__("pytorch_fid").__version__, __import__("torch_fidelity").__version__, torch.__version__),
    }
    with open(os.path.join(args.out, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
        f.write("\n")
    print(json.dumps(ref, indent=1))


if __name__ == "__main__":
    sys.exit(main())
