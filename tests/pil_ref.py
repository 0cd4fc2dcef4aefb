#!/usr/bin/python3
"""PIL references for tests/test_image.c (run with /usr/bin/python3, Pillow 9.4).

Raw image files ("*.raw") are: width and height as little-endian uint32,
then width*height*3 bytes of RGB.

  pil_ref.py jobs FILE
      Each line of FILE: SRC <TAB> DST [<TAB> STEP]...
      SRC is any image file PIL opens (EXIF orientation applied with
      ImageOps.exif_transpose, then convert("RGB")) or a .raw file.
      STEP is one of
        short:S          torchvision Resize(S) on a PIL image
        resize:W:H       Image.resize((W, H), Image.BILINEAR)
        crop:X:Y:W:H     Image.crop((X, Y, X + W, Y + H))
      The result is written to DST as raw.

  pil_ref.py make DIR
      Writes test inputs in many formats into DIR, and for those whose
      expected pixels PIL cannot give (16-bit PNGs, which PIL opens
      differently), NAME.expect.raw with the expected RGB.
"""
import io
import os
import struct
import sys
import zlib

from PIL import Image, ImageOps


def write_raw(path, im):
    im = im.convert("RGB")
    with open(path, "wb") as f:
        f.write(struct.pack("<II", im.width, im.height))
        f.write(im.tobytes())


def write_raw_bytes(path, w, h, data):
    with open(path, "wb") as f:
        f.write(struct.pack("<II", w, h))
        f.write(bytes(data))


def read_raw(path):
    with open(path, "rb") as f:
        data = f.read()
    w, h = struct.unpack("<II", data[:8])
    return Image.frombytes("RGB", (w, h), data[8:8 + w * h * 3])


def load(path):
    if path.endswith(".raw"):
        return read_raw(path)
    with Image.open(path) as im:
        return ImageOps.exif_transpose(im).convert("RGB")


def short_size(w, h, size):
    # torchvision.transforms.functional._compute_resized_output_size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if w <= h else (new_long, new_short)


def run_jobs(path):
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            parts = line.split("\t")
            im = load(parts[0])
            for step in parts[2:]:
                op, *args = step.split(":")
                args = [int(a) for a in args]
                if op == "short":
                    im = im.resize(short_size(im.width, im.height, args[0]), Image.BILINEAR)
                elif op == "resize":
                    im = im.resize((args[0], args[1]), Image.BILINEAR)
                elif op == "crop":
                    x, y, w, h = args
                    im = im.crop((x, y, x + w, y + h))
                else:
                    raise SystemExit("unknown step " + step)
            write_raw(parts[1], im)


# ---- generated inputs -------------------------------------------------------

def base_image(w=40, h=24):
    """Asymmetric picture: every orientation looks different."""
    im = Image.new("RGB", (w, h))
    px = []
    for y in range(h):
        for x in range(w):
            r = x * 255 // (w - 1)
            g = y * 255 // (h - 1)
            b = 255 if (x < w // 4 and y < h // 3) else 40
            px.append((r, g, b))
    im.putdata(px)
    return im


def png_chunk(kind, data):
    c = struct.pack(">I", len(data)) + kind + data
    return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_file(w, h, depth, color, raw_rows):
    """A PNG written by hand (PIL cannot write 16-bit colour PNGs)."""
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 0)
    data = b"".join(b"\0" + r for r in raw_rows)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(data))
            + png_chunk(b"IEND", b""))


def adam7_png(w, h, depth, color, channels, rows_of_samples):
    """An Adam7-interlaced PNG by hand (PIL writes none). rows_of_samples[y]
    is a list of w tuples of channel values; depth 8 or less."""
    passes = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2))
    data = b""
    for x0, y0, dx, dy in passes:
        xs = range(x0, w, dx)
        if not xs:
            continue
        for y in range(y0, h, dy):
            bits, n = 0, 0
            row = b""
            for x in xs:
                for v in rows_of_samples[y][x]:
                    bits = (bits << depth) | v
                    n += depth
                    while n >= 8:
                        row += bytes([(bits >> (n - 8)) & 255])
                        n -= 8
            if n:
                row += bytes([(bits << (8 - n)) & 255])
                bits, n = 0, 0
            data += b"\0" + row
    ihdr = struct.pack(">IIBBBBB", w, h, depth, color, 0, 0, 1)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(data))
            + png_chunk(b"IEND", b""))


def exif_app1_be(orientation):
    """APP1 Exif segment in big-endian (Motorola) byte order."""
    tiff = b"MM\0\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHI", 0x0112, 3, 1) + struct.pack(">HH", orientation, 0) + struct.pack(">I", 0)
    payload = b"Exif\0\0" + tiff
    return b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload


def make(d):
    os.makedirs(d, exist_ok=True)
    base = base_image()
    # EXIF orientations 1..8 (little-endian EXIF, as PIL writes it).
    for o in range(1, 9):
        ex = Image.Exif()
        ex[0x0112] = o
        base.save(os.path.join(d, "orient%d.jpg" % o), quality=95, exif=ex.tobytes())
    # Big-endian EXIF block inserted after SOI by hand.
    buf = io.BytesIO()
    base.save(buf, "JPEG", quality=95)
    j = buf.getvalue()
    with open(os.path.join(d, "orient_mm6.jpg"), "wb") as f:
        f.write(j[:2] + exif_app1_be(6) + j[2:])

    photo = base_image(97, 61)
    photo.save(os.path.join(d, "baseline.jpg"), quality=90)
    photo.save(os.path.join(d, "progressive.jpg"), quality=90, progressive=True)
    photo.save(os.path.join(d, "s444.jpg"), quality=90, subsampling=0)
    photo.convert("L").save(os.path.join(d, "gray.jpg"), quality=90)
    # CMYK with real black: PIL's RGB -> CMYK never sets K.
    c, m, y, _ = photo.convert("CMYK").split()
    k = Image.linear_gradient("L").resize(photo.size)
    Image.merge("CMYK", (c, m, y, k)).save(os.path.join(d, "cmyk.jpg"), quality=90)
    base_image(500, 375).save(os.path.join(d, "speed.jpg"), quality=90)

    photo.save(os.path.join(d, "rgb.png"))
    samples = [[photo.getpixel((x, y)) for x in range(photo.width)] for y in range(photo.height)]
    with open(os.path.join(d, "interlaced.png"), "wb") as f:
        f.write(adam7_png(photo.width, photo.height, 8, 2, 3, samples))
    g2 = [[((x + 3 * y) % 4,) for x in range(29)] for y in range(11)]
    with open(os.path.join(d, "interlaced_g2.png"), "wb") as f:
        f.write(adam7_png(29, 11, 2, 0, 1, g2))
    ex = Image.Exif()
    ex[0x0112] = 6
    photo.save(os.path.join(d, "orient6.png"), exif=ex.tobytes())
    photo.convert("L").save(os.path.join(d, "gray.png"))
    photo.convert("1").save(os.path.join(d, "gray1.png"))
    photo.convert("LA").save(os.path.join(d, "la.png"))
    rgba = photo.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(photo.size))
    rgba.save(os.path.join(d, "rgba.png"))
    pal = photo.convert("P", palette=Image.ADAPTIVE, colors=200)
    pal.save(os.path.join(d, "pal.png"))
    pal.save(os.path.join(d, "pal_trns.png"), transparency=3)
    photo.convert("P", palette=Image.ADAPTIVE, colors=16).save(os.path.join(d, "pal4.png"), bits=4)
    photo.save(os.path.join(d, "rgb_trns.png"), transparency=(0, 0, 40))

    # WebP: lossy, lossless, alpha (partly and fully transparent), animated.
    photo.save(os.path.join(d, "lossy.webp"), quality=80)
    photo.save(os.path.join(d, "lossless.webp"), lossless=True)
    rgba.save(os.path.join(d, "alpha.webp"), lossless=True, exact=True)
    rgba.save(os.path.join(d, "alpha_lossy.webp"), quality=90)
    frames = [photo, photo.transpose(Image.Transpose.ROTATE_180), photo.convert("L").convert("RGB")]
    frames[0].save(os.path.join(d, "anim.webp"), save_all=True, append_images=frames[1:], duration=100,
                   lossless=True)
    # TIFF: compressions, layouts, colour types, pages, orientation.
    photo.save(os.path.join(d, "rgb.tif"))
    photo.save(os.path.join(d, "lzw.tif"), compression="tiff_lzw")
    photo.save(os.path.join(d, "deflate.tiff"), compression="tiff_adobe_deflate")
    photo.save(os.path.join(d, "packbits.tif"), compression="packbits")
    photo.save(os.path.join(d, "tiled.tif"), compression="tiff_lzw", tiled=True, tile=(16, 16))
    photo.convert("L").save(os.path.join(d, "gray.tif"))
    photo.convert("1").save(os.path.join(d, "bw.tif"), compression="group4")
    pal.save(os.path.join(d, "pal.tif"))
    rgba.save(os.path.join(d, "rgba.tif"))
    photo.convert("LA").save(os.path.join(d, "la.tif"))
    Image.merge("CMYK", (c, m, y, k)).save(os.path.join(d, "cmyk.tif"))
    photo.save(os.path.join(d, "pages.tif"), save_all=True, append_images=[base, base])
    # Orientation tag: ddps turns TIFFs upright as JPEGs (Pillow 9.4's
    # exif_transpose does not handle TIFFs consistently), so the reference is
    # the same picture as a PNG with that EXIF orientation.
    for o in (3, 6, 8):
        photo.save(os.path.join(d, "orient%d.tif" % o), tiffinfo={0x0112: o})
        ex = Image.Exif()
        ex[0x0112] = o
        photo.save(os.path.join(d, "orient%d.tif.ref.png" % o), exif=ex.tobytes())

    # 16-bit PNGs; the expected RGB is the high byte of every sample.
    w, h = 37, 23
    def v16(x, y, c):
        return (x * 1777 + y * 2903 + c * 12345) % 65536
    rows, exp = [], []
    for y in range(h):
        r = b""
        for x in range(w):
            for c in range(3):
                r += struct.pack(">H", v16(x, y, c))
                exp.append(v16(x, y, c) >> 8)
        rows.append(r)
    with open(os.path.join(d, "rgb16.png"), "wb") as f:
        f.write(png_file(w, h, 16, 2, rows))
    write_raw_bytes(os.path.join(d, "rgb16.expect.raw"), w, h, exp)
    rows, exp = [], []
    for y in range(h):
        r = b""
        for x in range(w):
            for c in range(3):
                r += struct.pack(">H", v16(x, y, c))
                exp.append(v16(x, y, c) >> 8)
            r += struct.pack(">H", (x * 999) % 65536)
        rows.append(r)
    with open(os.path.join(d, "rgba16.png"), "wb") as f:
        f.write(png_file(w, h, 16, 6, rows))
    write_raw_bytes(os.path.join(d, "rgba16.expect.raw"), w, h, exp)
    for name, color, alpha in (("gray16", 0, False), ("la16", 4, True)):
        rows, exp = [], []
        for y in range(h):
            r = b""
            for x in range(w):
                r += struct.pack(">H", v16(x, y, 0))
                exp += [v16(x, y, 0) >> 8] * 3
                if alpha:
                    r += struct.pack(">H", 65535 - v16(x, y, 1))
            rows.append(r)
        with open(os.path.join(d, name + ".png"), "wb") as f:
            f.write(png_file(w, h, 16, color, rows))
        write_raw_bytes(os.path.join(d, name + ".expect.raw"), w, h, exp)

    photo.save(os.path.join(d, "rgb24.bmp"))
    pal.save(os.path.join(d, "pal8.bmp"))
    photo.convert("1").save(os.path.join(d, "bw1.bmp"))
    rgba.save(os.path.join(d, "rgba32.bmp"))
    photo.save(os.path.join(d, "rgb.ppm"))
    photo.convert("L").save(os.path.join(d, "gray.pgm"))
    photo.convert("1").save(os.path.join(d, "bw.pbm"))
    # PPM with maxval 100 (PIL scales with round(v / maxval * 255)).
    small = photo.resize((13, 7))
    vals = bytes(v * 100 // 255 for v in small.tobytes())
    with open(os.path.join(d, "max100.ppm"), "wb") as f:
        f.write(b"P6\n# comment\n13 7\n100\n" + vals)
    # 16-bit PGM, maxval 1000: expected value round-half-even(v / 1000 * 255).
    vals, exp = b"", []
    for i in range(11 * 5):
        v = (i * 97) % 1001
        vals += struct.pack(">H", v)
        exp += [min(255, round(v / 1000 * 255))] * 3
    with open(os.path.join(d, "gray16.pgm"), "wb") as f:
        f.write(b"P5 11 5 1000\n" + vals)
    write_raw_bytes(os.path.join(d, "gray16.pgm.expect.raw"), 11, 5, exp)

    make_hostile(d, j)


def make_hostile(d, jpeg):
    """Files that must be refused with an error naming them."""
    def put(name, data):
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)

    sig = b"\x89PNG\r\n\x1a\n"
    idat = png_chunk(b"IDAT", zlib.compress(b"\0\0\0\0"))
    put("huge.png", sig + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)) + idat
        + png_chunk(b"IEND", b""))
    put("zero.png", sig + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)) + idat
        + png_chunk(b"IEND", b""))
    # Too little image data for a 16x16 RGB image.
    put("short_idat.png", sig + png_chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)) + idat
        + png_chunk(b"IEND", b""))
    # JPEG frame size patched: find SOF0 (FFC0): length(2) precision(1) height(2) width(2).
    i = jpeg.index(b"\xff\xc0")
    put("huge.jpg", jpeg[:i + 5] + struct.pack(">HH", 65000, 65000) + jpeg[i + 9:])
    put("zero.jpg", jpeg[:i + 5] + struct.pack(">HH", 0, 40) + jpeg[i + 9:])
    # Entropy-coded data overwritten by stuffed 0xFF bytes (runs of 1 bits
    # are no valid Huffman code).
    s = jpeg.index(b"\xff\xda")
    seglen = struct.unpack(">H", jpeg[s + 2:s + 4])[0]
    start = s + 2 + seglen + 20
    put("badhuff.jpg", jpeg[:start] + b"\xff\x00" * 60 + jpeg[start + 120:])
    bmp = bytearray(open(os.path.join(d, "rgb24.bmp"), "rb").read())
    bmp[18:26] = struct.pack("<ii", 100000, 100000)
    put("huge.bmp", bytes(bmp))
    put("huge.ppm", b"P6 100000 100000 255\n" + b"\0" * 64)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "jobs":
        run_jobs(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "make":
        make(sys.argv[2])
    else:
        raise SystemExit(__doc__)
