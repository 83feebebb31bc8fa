"""What a PNG or JPEG file is made of, walked with bounded work before any decoder sees it.

    python -c "import service.image_structure as s; print(len(s.for_decoder(open('d.png',
        'rb').read(), s.Budget(max_chunks=8192, max_scans=100))))"

A decoder's cost does not follow the pixels alone. Pillow walks a PNG's chunks and a
JPEG's header segments one at a time in Python inside Image.open(), inflates every zTXt,
iTXt and iCCP chunk (up to 64 MiB an image) and keeps the text in `img.info`; libjpeg
makes one pass over the whole image per progressive scan. So before Pillow opens a file
(docs/security.md has the attacks; docs/journal/security.md, the figures):

- a PNG keeps only what decides its pixels (IHDR, PLTE, tRNS, IDAT, IEND) and its
  orientation (eXIf); text, ICC profiles, animation frames and private chunks are
  dropped unread, as a decoder that does not use them may;
- a JPEG's scans are counted;
- the chunks and segments of all the images of one request share one budget.

The walk reads lengths and tags only (no CRC, no inflating): its cost is one step per
chunk or header segment, which the budget bounds, plus one C-speed count of the scans.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from core.png import SIGNATURE as PNG_SIGNATURE
from service.errors import TooLarge

# The PNG chunks a decoder needs for the pixels, and eXIf for their orientation.
_PNG_KEPT = frozenset((b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND", b"eXIf"))
_SOS, _EOI = 0xDA, 0xD9
_STANDALONE = frozenset((0x01, *range(0xD0, 0xD9)))  # TEM, RST0-7, SOI: no length field


@dataclass
class Budget:
    """The walk's limits for one request (MNIST_MAX_IMAGE_CHUNKS, MNIST_MAX_JPEG_SCANS);
    `steps` counts what its images used so far."""

    max_chunks: int
    max_scans: int
    steps: int = field(default=0)

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.max_chunks:
            raise TooLarge(f"over {self.max_chunks} PNG chunks or JPEG segments in "
                           "one request")


def _png_for_decoder(data: bytes, budget: Budget) -> bytes:
    """The PNG with only the chunks in _PNG_KEPT, up to IEND; the same bytes when nothing
    is dropped. A chunk that runs past the end is left in place for Pillow's own error."""
    pos, end, kept, dropped = len(PNG_SIGNATURE), len(data), [PNG_SIGNATURE], False
    while pos + 8 <= end:
        budget.step()
        length, tag = struct.unpack_from(">I4s", data, pos)
        after = pos + 12 + length  # length, tag, body, CRC
        if after > end:
            kept.append(data[pos:])
            break
        if tag in _PNG_KEPT:
            kept.append(data[pos:after])
        else:
            dropped = True
        if tag == b"IEND":
            break
        pos = after
    return b"".join(kept) if dropped else data


def _count_jpeg_scans(data: bytes, budget: Budget) -> None:
    """Walk the header's marker segments to the first scan (a step each), then count the
    scans: 413 over the limit. Entropy data cannot hold FF DA (a 0xFF in it is followed
    by a stuffed zero), so every FF DA after the first scan starts another one."""
    pos, end = 2, len(data)
    while pos + 4 <= end:
        if data[pos] != 0xFF or data[pos + 1] in (0x00, 0xFF):
            # Junk or fill bytes between segments: Pillow steps over them one at a time.
            pos += 1
            budget.step()
            continue
        marker = data[pos + 1]
        budget.step()
        if marker == _EOI:
            return
        if marker == _SOS:
            scans = data.count(b"\xff\xda", pos)
            if scans > budget.max_scans:
                raise TooLarge(f"JPEG has {scans} scans: over the limit of "
                               f"{budget.max_scans}")
            return
        pos += 2 if marker in _STANDALONE else 2 + struct.unpack_from(">H", data, pos + 2)[0]


def for_decoder(data: bytes, budget: Budget) -> bytes:
    """The bytes to give the decoder: a PNG stripped of the chunks no decoder here needs,
    a JPEG checked for its scans, anything else as it is (the decoder refuses it)."""
    if data.startswith(PNG_SIGNATURE):
        return _png_for_decoder(data, budget)
    if data.startswith(b"\xff\xd8"):
        _count_jpeg_scans(data, budget)
    return data
