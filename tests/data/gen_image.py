#!/usr/bin/python3
"""Generates the reference data of tests/check_image.c and tests/check_image_examples.c.

Run from the repository root:  /usr/bin/python3 tests/data/gen_image.py
Needs numpy, cv2 (OpenCV 4.x), PIL and skimage (Debian: python3-opencv,
python3-pil, python3-skimage) and the official example data in
../shared/data/examples. Writes tests/data/image/ (small crops and the
library outputs on them) and tests/data/image/examples.txt (CRC-32 checksums of
full-size pipeline outputs on the example files, for check_image_examples).

The albumentations 0.4.3 transforms are written out here with their formulas
(SmallestMaxSize: py3round sizes then cv2.resize; CenterCrop; RandomCrop;
HorizontalFlip) because that old version is not packaged; the resizing itself
is real cv2. The official dataset code is not imported.
"""
import glob
import os
import struct
import sys
import zlib

import cv2
import numpy as np
from PIL import Image
from skimage.color import rgb2gray
from skimage.feature import canny

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX = os.path.join(ROOT, "..", "shared", "data", "examples")
OUT = os.path.join(ROOT, "tests", "data", "image")


def out(name):
    return os.path.join(OUT, name)


def save_png(name, a):
    a = np.ascontiguousarray(a)
    Image.fromarray(a[..., 0] if a.ndim == 3 and a.shape[2] == 1 else a).save(out(name))
    # every reference PNG must decode back to exactly the array
    back = np.array(Image.open(out(name)))
    assert np.array_equal(back.reshape(a.shape), a), name


def save_npy(name, a):
    np.save(out(name), np.ascontiguousarray(a))


# ---- albumentations 0.4.3, written out ----

def py3round(number):
    if abs(round(number) - number) == 0.5:
        return int(2.0 * round(number / 2.0))
    return int(round(number))


def smallest_max_size(img, max_size, interpolation=cv2.INTER_LINEAR):
    height, width = img.shape[:2]
    scale = max_size / float(min(width, height))
    if scale != 1.0:
        new_height, new_width = tuple(py3round(dim * scale) for dim in (height, width))
        if (new_height, new_width) != (height, width):
            squeeze = img.ndim == 3 and img.shape[2] == 1
            img = cv2.resize(img, (new_width, new_height), interpolation=interpolation)
            if squeeze:
                img = img[..., None]
    return img


def center_crop(img, h, w):
    H, W = img.shape[:2]
    y, x = (H - h) // 2, (W - w) // 2
    return img[y:y + h, x:x + w]


def random_crop(img, h, w, u, v):
    H, W = img.shape[:2]
    y, x = int((H - h) * u), int((W - w) * v)
    return img[y:y + h, x:x + w]


def resize3(img, h, w, mode):
    r = cv2.resize(img, (w, h), interpolation=mode)
    return r[..., None] if r.ndim == 2 else r


# ---- a minimal PNG writer for the formats PIL cannot write (16-bit RGB, Adam7) ----

def png_bytes(a, color_type, bit_depth, interlace=False):
    """a: uint8/uint16 array [H, W, C] of samples (already packed for depth < 8: no)."""
    H, W = a.shape[:2]

    def raw_rows(sub):
        rows = []
        for row in sub:
            if bit_depth == 16:
                data = row.astype(">u2").tobytes()
            elif bit_depth == 8:
                data = row.astype(np.uint8).tobytes()
            else:
                vals = row.reshape(-1).astype(np.uint8)
                per = 8 // bit_depth
                buf = bytearray()
                for i in range(0, len(vals), per):
                    byte = 0
                    for j in range(per):
                        v = int(vals[i + j]) if i + j < len(vals) else 0
                        byte |= v << (8 - bit_depth * (j + 1))
                    buf.append(byte)
                data = bytes(buf)
            rows.append(b"\x00" + data)
        return b"".join(rows)

    if interlace:
        passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]
        raw = b""
        for y0, x0, dy, dx in passes:
            sub = a[y0::dy, x0::dx]
            if sub.shape[0] and sub.shape[1]:
                raw += raw_rows(sub)
    else:
        raw = raw_rows(a)

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", W, H, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def write_png_raw(name, a, color_type, bit_depth, interlace=False):
    with open(out(name), "wb") as f:
        f.write(png_bytes(a, color_type, bit_depth, interlace))


def pil_decode(name, convert=None):
    im = Image.open(out(name))
    if convert:
        im = im.convert(convert)
    a = np.array(im)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    return a[..., None] if a.ndim == 2 else a


def crc(a):
    return "%08x" % (zlib.crc32(np.ascontiguousarray(a).tobytes()) & 0xFFFFFFFF)


def main():
    if not os.path.isdir(EX):
        sys.exit("the example data %s is absent" % EX)
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240601)

    # ---- committed inputs: small crops of the example data ----
    coco = np.array(Image.open(os.path.join(EX, "coco_images", "000000018380.jpg")).convert("RGB"))
    rgb = coco[300:361, 150:233].copy()                        # [61, 83, 3]
    save_png("rgb.png", rgb)
    alpha = (np.add.outer(np.arange(61) * 3, np.arange(83) * 2) % 256).astype(np.uint8)
    rgba = np.concatenate([rgb, alpha[..., None]], axis=2)     # [61, 83, 4]
    save_png("rgba.png", rgba)

    # ---- loader references: PIL's decode of every PNG flavour and of JPEGs ----
    small = rgb[:19, :27]
    g8 = small[..., 0]
    save_png("fmt_gray.png", g8[..., None])
    g16 = (g8.astype(np.uint16) * 257 + rng.integers(0, 256, g8.shape).astype(np.uint16))
    write_png_raw("fmt_gray16.png", g16[..., None], 0, 16)
    save_npy("fmt_gray16.npy", (np.array(Image.open(out("fmt_gray16.png"))).astype(np.uint16) >> 8).astype(np.uint8)[..., None])
    rgb16 = small.astype(np.uint16) * 257 + rng.integers(0, 256, small.shape).astype(np.uint16)
    write_png_raw("fmt_rgb16.png", rgb16, 2, 16)
    ref16 = pil_decode("fmt_rgb16.png")
    assert np.array_equal(ref16, (rgb16 >> 8).astype(np.uint8)), "PIL reduces 16-bit RGB to the high byte"
    save_npy("fmt_rgb16.npy", ref16)
    ga = np.stack([g8, alpha[:19, :27]], axis=2)
    save_png("fmt_ga.png", ga)
    save_npy("fmt_ga.npy", pil_decode("fmt_ga.png"))
    ga16 = ga.astype(np.uint16) * 257 + 3
    write_png_raw("fmt_ga16.png", ga16, 4, 16)
    la = pil_decode("fmt_ga16.png")     # Pillow opens 16-bit gray+alpha as RGBA (gray replicated)
    assert la.shape[2] == 4 and np.array_equal(la[..., 0], la[..., 1]) and np.array_equal(la[..., 0], la[..., 2])
    save_npy("fmt_ga16.npy", la[..., [0, 3]])
    Image.fromarray(small).quantize(colors=23).save(out("fmt_palette.png"))
    save_npy("fmt_palette.npy", pil_decode("fmt_palette.png", "RGB"))
    pal = Image.fromarray(small).quantize(colors=11)
    pal.info["transparency"] = bytes([0, 128, 255] + [255] * 8)
    pal.save(out("fmt_palette_trns.png"), transparency=bytes([0, 128, 255] + [255] * 8))
    save_npy("fmt_palette_trns.npy", pil_decode("fmt_palette_trns.png", "RGBA"))
    bits = (g8 > 120).astype(np.uint8)
    write_png_raw("fmt_gray1.png", bits[..., None], 0, 1)
    save_npy("fmt_gray1.npy", pil_decode("fmt_gray1.png", "L"))
    g4 = (g8 >> 4)
    write_png_raw("fmt_gray4.png", g4[..., None], 0, 4)
    save_npy("fmt_gray4.npy", pil_decode("fmt_gray4.png", "L"))
    write_png_raw("fmt_interlaced.png", rgba[:23, :29], 6, 8, interlace=True)
    save_npy("fmt_interlaced.npy", pil_decode("fmt_interlaced.png"))
    write_png_raw("fmt_rgb16_interlaced.png", rgb16, 2, 16, interlace=True)
    save_npy("fmt_rgb16_interlaced.npy", pil_decode("fmt_rgb16_interlaced.png"))
    Image.fromarray(rgb).save(out("fmt_rgb.jpg"), quality=90)
    save_npy("fmt_rgb.jpg.npy", pil_decode("fmt_rgb.jpg"))
    Image.fromarray(rgb).save(out("fmt_rgb444.jpg"), quality=85, subsampling=0)
    save_npy("fmt_rgb444.jpg.npy", pil_decode("fmt_rgb444.jpg"))
    Image.fromarray(rgb).save(out("fmt_progressive.jpg"), quality=80, progressive=True)
    save_npy("fmt_progressive.jpg.npy", pil_decode("fmt_progressive.jpg"))
    Image.fromarray(rgb[..., 1]).save(out("fmt_gray.jpg"), quality=90)
    save_npy("fmt_gray.jpg.npy", pil_decode("fmt_gray.jpg"))
    # what Pillow's encoder makes of the crops (quality 100 RGB, quality 90 gray), decoded
    Image.fromarray(rgb).save(out("tmp.jpg"), quality=100)
    save_npy("save_q100.npy", pil_decode("tmp.jpg"))
    Image.fromarray(rgb[..., 1]).save(out("tmp.jpg"), quality=90)
    save_npy("save_gray_q90.npy", pil_decode("tmp.jpg"))
    os.remove(out("tmp.jpg"))

    # ---- cv2.resize: u8 ----
    sizes = {"up": (79, 101), "down": (29, 40), "mixed": (45, 120)}
    modes = {"nearest": cv2.INTER_NEAREST, "linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "area": cv2.INTER_AREA}
    variants = {"c3": rgb, "c1": rgb[..., :1].copy(), "c4": rgba}
    for mname, m in modes.items():
        for vname, a in variants.items():
            for sname, (h, w) in sizes.items():
                if vname != "c3" and sname == "mixed":
                    continue
                save_png("cv_%s_%s_%s.png" % (mname, vname, sname), resize3(a, h, w, m))
            # exact 2x and 3x shrinks take OpenCV's box-average paths
            save_png("cv_%s_%s_half.png" % (mname, vname), resize3(a[:60, :82], 30, 41, m))
            if vname == "c3":
                save_png("cv_%s_%s_third.png" % (mname, vname), resize3(a[:60, :81], 20, 27, m))

    # ---- cv2.resize: f32 depth ----
    depth_png = os.path.join(EX, "drin_depth", "n02100877", "ILSVRC2012_val_00039863.png")
    rgba_d = np.array(Image.open(depth_png))
    H, W = rgba_d.shape[:2]
    dcrop = rgba_d[H // 2 - 24:H // 2 + 24, W // 2 - 32:W // 2 + 32].copy()   # [48, 64, 4]
    save_png("depth.png", dcrop)
    raw = dcrop.copy()
    raw.dtype = np.float32
    raw = raw.reshape(dcrop.shape[:2])
    save_npy("depth_raw.npy", raw)
    d = (raw - raw.min()) / max(1e-8, raw.max() - raw.min())
    d = 2.0 * d - 1.0
    assert d.dtype == np.float32
    save_npy("depth_norm.npy", d)
    fsizes = {"up": (50, 70), "down": (23, 31), "half": (24, 32), "mixed": (30, 100)}
    for mname, m in modes.items():
        for sname, (h, w) in fsizes.items():
            save_npy("cvf_%s_%s.npy" % (mname, sname), cv2.resize(d, (w, h), interpolation=m))
    save_npy("cvf_linear_c3_down.npy", cv2.resize(np.ascontiguousarray((rgb / 127.5 - 1).astype(np.float32)), (40, 29),
                                                  interpolation=cv2.INTER_LINEAR))

    # ---- albumentations pipelines on the crops ----
    save_png("alb_sms48_linear_cc48.png", center_crop(smallest_max_size(rgb, 48), 48, 48))
    save_png("alb_sms40_cubic_cc40.png", center_crop(smallest_max_size(rgb, 40, cv2.INTER_CUBIC), 40, 40))
    save_png("alb_sms50_area_rc36_flip.png",
             np.ascontiguousarray(random_crop(smallest_max_size(rgb, 50, cv2.INTER_AREA), 36, 36, 0.3, 0.7)[:, ::-1]))
    save_npy("alb_depth_sms32_cc32.npy", center_crop(smallest_max_size(d, 32), 32, 32))
    save_npy("alb_depth_sms24_cc24.npy", center_crop(smallest_max_size(d, 24), 24, 24))   # exact 2x: area path

    # ---- Pillow resize (super-resolution degradation) ----
    h, w = rgb.shape[:2]
    lr = Image.fromarray(rgb).resize((w // 4, h // 4), Image.BICUBIC)
    save_png("pil_bicubic_down4.png", np.array(lr))
    for name, f in [("nearest", Image.NEAREST), ("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)]:
        save_png("pil_%s_up.png" % name, np.array(lr.resize((w, h), f)))
    for name, f in [("lanczos", Image.LANCZOS), ("box", Image.BOX), ("hamming", Image.HAMMING)]:
        save_png("pil_%s_down.png" % name, np.array(Image.fromarray(rgb).resize((37, 23), f)))
    save_png("pil_gray_bicubic.png", np.array(Image.fromarray(rgb[..., 0]).resize((50, 17), Image.BICUBIC))[..., None])
    # imscale(x, 3, keepshapes=True) from the float image, as the SR datasets do
    x = (rgb / 127.5 - 1.0).astype(np.float32)
    u8 = ((x + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
    sr = np.array(Image.fromarray(u8).resize((w // 3, h // 3), Image.BICUBIC).resize((w, h), Image.BICUBIC))
    save_png("pil_imscale3.png", sr)

    # ---- skimage rgb2gray + canny ----
    gray = rgb2gray(x)
    assert gray.dtype == np.float32
    save_npy("gray.npy", gray)
    save_png("canny_s2.png", (canny(gray, sigma=2) * 255).astype(np.uint8)[..., None])
    save_png("canny_s1_lo05_hi30.png", (canny(gray, sigma=1, low_threshold=0.05, high_threshold=0.3) * 255)
             .astype(np.uint8)[..., None])

    # ---- [-1, 1] <-> u8 ----
    v = np.concatenate([np.array([-1, 1, 0, -1.0000001, 1.0000001, -2, 2, 0.999, -0.999, 1e-8, -1e-8], np.float32),
                        (np.arange(256) / 127.5 - 1).astype(np.float32),
                        (np.arange(256) / 127.5 - 1 + 1e-7).astype(np.float32),
                        (rng.random(3 * 7 * 11 * 3 - 11 - 512) * 2.2 - 1.1).astype(np.float32)])
    x_chw = v.reshape(3, 21, 11)
    save_npy("tou8_in.npy", x_chw)
    save_npy("tou8_ref.npy", ((x_chw.transpose(1, 2, 0) + 1.0) * 127.5).clip(0, 255).astype(np.uint8))
    save_npy("fromu8_ref.npy", (np.arange(256) / 127.5 - 1.0).astype(np.float32))

    # ---- segmentation label maps -> one-hot ----
    def window(seg, want_255):
        for y in range(0, seg.shape[0] - 12, 7):
            for x0 in range(0, seg.shape[1] - 16, 7):
                win = seg[y:y + 12, x0:x0 + 16]
                if len(np.unique(win)) >= 3 and (not want_255 or (win == 255).any()):
                    return win.copy()
        raise RuntimeError("no suitable window")

    for name, path, K, shift in [
            ("sflckr", "sflckr_segmentations/canada/256743165_9f130ba95b_b.png", 182, False),
            ("coco", "coco_segmentations/000000018380.png", 183, True),
            ("ade20k", "ade20k_segmentations/ADE_val_00000636.png", 151, False)]:
        seg = np.array(Image.open(os.path.join(EX, path)))
        assert seg.ndim == 2
        win = window(seg, shift)
        save_png("labels_%s.png" % name, win[..., None])
        lab = (win + 1).astype(np.uint8) if shift else win
        save_npy("onehot_%s.npy" % name, np.eye(K, dtype=np.uint8)[lab])      # [12, 16, K]

    # ---- full-size example pipelines: checksums for check_image_examples ----
    lines = []
    for f in sorted(glob.glob(os.path.join(EX, "**", "*.*"), recursive=True)):
        if not f.lower().endswith((".png", ".jpg", ".jpeg")):
            continue
        rel = os.path.relpath(f, EX)
        a = np.array(Image.open(f))
        a = a[..., None] if a.ndim == 2 else a
        lines.append("decode %s %d %d %d %s" % (rel, a.shape[0], a.shape[1], a.shape[2], crc(a)))

    def seg_example(kind, img_rel, seg_rel, K, shift):
        im = np.array(Image.open(os.path.join(EX, img_rel)).convert("RGB"))
        im = center_crop(smallest_max_size(im, 256, cv2.INTER_CUBIC), 256, 256)
        seg = np.array(Image.open(os.path.join(EX, seg_rel)))
        if shift:
            seg = seg + np.uint8(1)
        seg = center_crop(smallest_max_size(seg, 256, cv2.INTER_NEAREST), 256, 256)
        onehot = np.eye(K, dtype=np.float32)[seg].transpose(2, 0, 1)
        lines.append("%s %s %s %d %d %s %s %s" % (kind, img_rel, seg_rel, K, int(shift), crc(im), crc(seg), crc(onehot)))
        save_npy("ex_%s_%s_sub.npy" % (kind, os.path.splitext(os.path.basename(img_rel))[0]), im[::8, ::8])

    seg_example("seg", "ade20k_images/ADE_val_00000636.jpg", "ade20k_segmentations/ADE_val_00000636.png", 151, False)
    seg_example("seg", "ade20k_images/ADE_val_00000289.jpg", "ade20k_segmentations/ADE_val_00000289.png", 151, False)
    seg_example("seg", "coco_images/000000064898.jpg", "coco_segmentations/000000064898.png", 183, True)
    seg_example("seg", "coco_images/000000098392.jpg", "coco_segmentations/000000098392.png", 183, True)

    # S-FLCKR Examples: full resolution, one-hot of the stored labels
    rel = "sflckr_segmentations/canada/256743165_9f130ba95b_b.png"
    seg = np.array(Image.open(os.path.join(EX, rel)))
    lines.append("sflckr %s 182 %s" % (rel, crc(seg)))

    for img_rel in ["drin_images/n02100877/ILSVRC2012_val_00039863.JPEG",
                    "drin_images/n01819313/ILSVRC2012_val_00003068.JPEG"]:
        dep_rel = img_rel.replace("drin_images", "drin_depth").replace(".JPEG", ".png")
        im = np.array(Image.open(os.path.join(EX, img_rel)).convert("RGB"))
        im = center_crop(smallest_max_size(im, 256), 256, 256)
        rgba_full = np.array(Image.open(os.path.join(EX, dep_rel)))
        dd = rgba_full.copy()
        dd.dtype = np.float32
        dd = dd.reshape(rgba_full.shape[:2])
        dd = (dd - dd.min()) / max(1e-8, dd.max() - dd.min())
        dd = 2.0 * dd - 1.0
        dd = center_crop(smallest_max_size(dd, 256), 256, 256)
        xf = (im / 127.5 - 1.0).astype(np.float32)
        edges = canny(rgb2gray(xf), sigma=2).astype(np.float32)
        u8 = ((xf + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
        lr = np.array(Image.fromarray(u8).resize((64, 64), Image.BICUBIC).resize((256, 256), Image.BICUBIC))
        lines.append("drin %s %s %s %s %s %s" % (img_rel, dep_rel, crc(im), crc(dd), crc(edges), crc(lr)))
        base = os.path.splitext(os.path.basename(img_rel))[0]
        save_npy("ex_drin_%s_sub.npy" % base, im[::8, ::8])
        save_npy("ex_drin_%s_depth_sub.npy" % base, dd[::8, ::8])

    # 8-bit bicubic rows end in an integer tail after OpenCV's 8-wide float SIMD
    # blocks; these two sizes round differently if the split is placed wrongly
    for rel, (oh, ow) in [("sflckr_images/ireland/15570753471_74db396d14_b.jpg", (375, 500)),
                          ("drin_images/n02089973/ILSVRC2012_val_00000028.JPEG", (227, 250))]:
        im = np.array(Image.open(os.path.join(EX, rel)).convert("RGB"))
        lines.append("cubic %s %d %d %s" % (rel, oh, ow, crc(cv2.resize(im, (ow, oh), interpolation=cv2.INTER_CUBIC))))

    with open(out("examples.txt"), "w") as fh:
        fh.write("# generated by tests/data/gen_image.py: CRC-32 of library outputs on ../shared/data/examples\n")
        fh.write("\n".join(lines) + "\n")

    total = sum(os.path.getsize(os.path.join(OUT, n)) for n in os.listdir(OUT))
    print("wrote %d files, %d bytes" % (len(os.listdir(OUT)), total))


if __name__ == "__main__":
    main()
