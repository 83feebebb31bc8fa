"""The fuzzer's starting corpus, made by code at fuzz time (no MNIST data is committed).

    python -m fuzz.seeds /tmp/seeds        # writes the files, prints how many

Real MNIST digits where the IDX files are found (MNIST_DIR, or ../shared/data/mnist),
else two drawn ones; each as the fast path's plain PNG, as the upload styles clients
send, and through Pillow in varied modes (palette with tRNS, RGBA, 16-bit, Adam7
interlaced, text and ICC chunks, APNG; progressive, CMYK, EXIF-rotated, restart-marker
and MPO JPEGs); then the hostile files of benchmarks/bombs.py and tests/security (decode
bombs, damaged and foreign files), and hand-made multipart bodies. Every seed is in
fuzz.pipeline's input format: a control byte, then the payload.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from benchmarks.bombs import jpeg_claiming, png_bomb
from clients.uploads import UPLOAD_STYLES
from core.data import read_idx
from core.png import SIGNATURE, chunk, encode_png
from fuzz.pipeline import BOUNDARY, SEP, multipart

ROOT = Path(__file__).resolve().parents[1]
# Adam7: (x0, y0, dx, dy) of each of the seven passes.
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))
# A JPEG marker: 0xFF then neither a stuffed zero nor a restart marker.
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7]")


def digits(count: int = 6) -> list[np.ndarray]:
    """uint8 [28, 28] digits: the first of MNIST's test set, or two drawn ones."""
    folder = Path(os.environ.get("MNIST_DIR") or ROOT.parent / "shared" / "data" / "mnist")
    path = folder / "t10k-images-idx3-ubyte.gz"
    if path.is_file():
        return list(read_idx(path)[:count])
    one, zero = np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.uint8)
    one[5:23, 12:16] = 255
    yy, xx = np.mgrid[:28, :28]
    zero[np.abs(np.hypot(yy - 14, xx - 14) - 7) < 2] = 230
    return [one, zero]


def pillow(img: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **options)
    return buf.getvalue()


def interlaced_png(gray: np.ndarray) -> bytes:
    """An 8-bit grey Adam7-interlaced PNG (Pillow reads these, but does not write them)."""
    raw = b""
    for x0, y0, dx, dy in _ADAM7:
        sub = gray[y0::dy, x0::dx]
        if sub.size:
            raw += np.hstack([np.zeros((sub.shape[0], 1), np.uint8), sub]).tobytes()
    h, w = gray.shape
    header = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 1)
    return (SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def _with_chunks(png: bytes, chunks: bytes) -> bytes:
    """The PNG with `chunks` inserted right after IHDR."""
    at = len(SIGNATURE) + 25
    return png[:at] + chunks + png[at:]


def png_variants(digit: np.ndarray) -> Iterator[bytes]:
    """The digit, 56x56, as PNGs of every colour type, bit depth and common chunk."""
    big = Image.fromarray(digit).resize((56, 56), Image.Resampling.BILINEAR)
    paper = Image.fromarray(255 - np.asarray(big))
    yield pillow(big, "PNG")
    yield pillow(paper.convert("1"), "PNG")
    yield pillow(paper.convert("P"), "PNG", transparency=255)
    yield pillow(paper.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE), "PNG")
    yield pillow(big.convert("LA"), "PNG")
    yield pillow(paper.convert("RGB"), "PNG", optimize=True)
    rgba = np.zeros((56, 56, 4), np.uint8)
    rgba[..., 3] = np.asarray(big)
    yield pillow(Image.fromarray(rgba, "RGBA"), "PNG")
    yield pillow(Image.fromarray(np.asarray(big, np.uint16) * 257).convert("I;16"), "PNG")
    yield interlaced_png(np.asarray(paper))
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "a digit")
    info.add_text("Software", "x" * 200, zip=True)
    info.add_itxt("Description", "digit", lang="en", tkey="d", zip=True)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate
    yield pillow(paper, "PNG", pnginfo=info, exif=exif, dpi=(300, 300),
                 icc_profile=b"\0" * 128)
    yield pillow(big, "PNG", save_all=True, append_images=[paper], duration=100, loop=0)


def jpeg_variants(digit: np.ndarray) -> Iterator[bytes]:
    """The digit on paper, 64x64, as baseline, progressive, CMYK, rotated, MPO JPEGs."""
    paper = Image.fromarray(255 - digit).resize((64, 64), Image.Resampling.BILINEAR)
    rgb = paper.convert("RGB")
    yield pillow(paper, "JPEG", quality=90)
    yield pillow(rgb, "JPEG", quality=75, subsampling=2)
    yield pillow(rgb, "JPEG", progressive=True, optimize=True)
    yield pillow(paper, "JPEG", progressive=True, quality=50)
    yield pillow(rgb.convert("CMYK"), "JPEG")
    exif = Image.Exif()
    exif[0x0112] = 8
    yield pillow(rgb, "JPEG", exif=exif, icc_profile=b"\0" * 128)
    yield pillow(rgb, "JPEG", restart_marker_blocks=2, subsampling=0)
    yield pillow(paper, "MPO", save_all=True, append_images=[rgb])
    yield _with_segments(pillow(paper, "JPEG"), [
        (0xED, b"Photoshop 3.0\0" + b"8BIM\x03\xed\0\0" + struct.pack(">I", 16) + bytes(16)),
        (0xE1, b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta/>"),
        (0xE2, b"FPXR\0" + bytes(8)),
        (0xE2, b"ICC_PROFILE\0\x01\x02" + bytes(64)),
        (0xE2, b"ICC_PROFILE\0\x02\x02" + bytes(64)),
        (0xEE, b"Adobe\0\x64\0\0\0\0\x02"),
        (0xFE, b"a comment"),
    ])


def _with_segments(jpeg: bytes, segments: list[tuple[int, bytes]]) -> bytes:
    """The JPEG with (marker, payload) segments inserted right after its SOI."""
    inserted = b"".join(bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body
                        for marker, body in segments)
    return jpeg[:2] + inserted + jpeg[2:]


def _repeated_scans(repeats: int = 2000) -> bytes:
    """A progressive JPEG with its smallest scan (an AC scan of a flat colour channel, no
    data) repeated before the end: libjpeg walks every scan over the whole image."""
    noise = np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)
    data = pillow(Image.fromarray(noise).convert("RGB"), "JPEG", progressive=True)
    scans = []
    for sos in re.finditer(rb"\xff\xda", data):
        start = sos.start()
        header_end = start + 2 + int.from_bytes(data[start + 2:start + 4], "big")
        marker = _MARKER.search(data, header_end)  # the entropy data ends at a real marker
        scans.append(data[start:marker.start() if marker else -2])
    return data[:-2] + min(scans, key=len) * repeats + data[-2:]


def hostile() -> Iterator[bytes]:
    """The decode bombs, damaged files and foreign formats of the tests."""
    plain = encode_png(np.full((50, 50), 40, np.uint8))
    yield jpeg_claiming(9000, 2700)
    yield png_bomb(2000, 2000, "L")
    yield png_bomb(300, 300)
    yield png_bomb(12000, 12000, "L")[:4096]  # a 413 from the header alone
    text_bomb = zlib.compress(bytes(1 << 20), 9)
    yield _with_chunks(plain, b"".join(chunk(b"zTXt", b"k%d\0\0" % i + text_bomb)
                                       for i in range(4)))
    yield _with_chunks(plain, chunk(b"iCCP", b"icc\0\0" + text_bomb))
    yield _repeated_scans()
    yield SIGNATURE + b"garbage" * 5
    yield b"\xff\xd8\xff" + b"x" * 40
    yield plain[:33] + bytes(30)
    yield b"\xff\xd8\xff\xe0" + bytes(100)
    yield plain[:60]
    yield plain[:-5] + b"\0\0\0\0\0"  # IEND's CRC wrong
    yield plain + b"trailing bytes after IEND"
    filtered = np.hstack([np.ones((28, 1), np.uint8), np.zeros((28, 28), np.uint8)])
    yield SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(filtered.tobytes())) + chunk(b"IEND", b"")
    yield SIGNATURE + chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 0, 8, 0, 0, 0, 0))
    yield encode_png(np.zeros((28, 28), np.uint8))  # blank: 422
    for magic in (b"GIF89a", b"BM", b"II*\0", b"RIFF", b"<svg", b"\0\0\1\0", b"%PDF"):
        yield magic + bytes(40)


def multipart_bodies(png: bytes, jpeg: bytes) -> Iterator[bytes]:
    """Mode-3 payloads: a content-type line, then a hand-made multipart body."""
    b, ct = BOUNDARY, b"multipart/form-data; boundary=" + BOUNDARY
    disp = b'Content-Disposition: form-data; name="image"'
    yield ct + b"\n" + multipart("image", [png])
    yield b'Multipart/Form-Data; charset=utf-8; boundary="' + b + b'"\n' + multipart(
        "image", [jpeg], part_type=b"image/jpeg")
    yield ct + b"\npreamble\r\n" + multipart("image", [png]) + b"epilogue"
    yield ct + b"\n" + multipart("image", [png]).replace(b"\r\n", b"\n")
    yield ct + b"\n--" + b + b'\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n' \
        + multipart("image", [png])
    yield ct + b"\n" + multipart("image", [png, jpeg])
    yield ct + b"\n--" + b + b"\r\n" + disp + b"\r\n\r\nhttp://example.com/d.png\r\n--" \
        + b + b"--\r\n"
    yield ct + b"\n--" + b + b"\r\n" + disp + b"; filename*=UTF-8''d%C3%A9.png\r\n" \
        + b"Content-Transfer-Encoding: base64\r\nContent-Type: image/png\r\n\r\n" + png \
        + b"\r\n--" + b + b"--\r\n"
    yield ct + b"\n--" + b + b"\r\n" + disp + b'; filename="e.png"\r\n\r\n\r\n--' + b + b"--"
    yield ct + b"\n--" + b + b"\r\n" + disp + b'; filename="d.png"\r\n\r\n' + png
    yield b"multipart/form-data\n" + multipart("image", [png])
    yield b"application/json\n{}"


def seeds() -> Iterator[bytes]:
    """Every seed, control byte first."""
    found = digits()
    for i, digit in enumerate(found):
        yield bytes([(0, 4 | 5 << 5, 8, 2)[i % 4]]) + encode_png(digit)
    yield b"\x01" + SEP.join(encode_png(d) for d in found)
    styles = [render(found[0]) for render in UPLOAD_STYLES.values()]
    yield b"\x01" + SEP.join(styles)
    for data in [*styles, *jpeg_variants(found[0]), *hostile()]:
        yield b"\x00" + data
    for data in png_variants(found[1]):  # bit 4: the harness repairs the chunks' CRCs
        yield b"\x00" + data
        yield b"\x10" + data
    yield b"\x01" + SEP.join([encode_png(found[0]), png_bomb(300, 300), b"GIF89a"])
    png, jpeg = encode_png(found[0]), pillow(Image.fromarray(found[0]), "JPEG")
    for i, body in enumerate(multipart_bodies(png, jpeg)):
        yield bytes([3 | (4 | 2 << 5 if i % 3 == 1 else 0) | (8 if i % 2 else 0)]) + body
    yield bytes([3 | 16]) + b"\n" + multipart("images", [png, jpeg, png])


def write_seeds(folder: Path) -> int:
    """Write every seed to `folder` (named by its SHA-1, as libFuzzer names inputs); how
    many distinct files that made."""
    folder.mkdir(parents=True, exist_ok=True)
    names = set()
    for data in seeds():
        name = hashlib.sha1(data).hexdigest()
        (folder / name).write_bytes(data)
        names.add(name)
    return len(names)


if __name__ == "__main__":
    print(write_seeds(Path(sys.argv[1])), "seeds in", sys.argv[1])
