# SPDX-License-Identifier: MIT
"""Converts binary PGM (P5, 8-bit) files to grayscale PNG, losslessly, with the standard library only.

GStreamer's pnmdec refuses some of the ORL faces (those whose pixel data starts with a byte that looks
like whitespace), so setup.sh stores them as PNG. usage: pgm_to_png.py IN.pgm OUT.png [IN OUT ...]
"""
import struct
import sys
import zlib


def read_pgm(path):
    data = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        start = pos
        while not data[pos:pos + 1].isspace():
            pos += 1
        fields.append(data[start:pos])
    pos += 1  # exactly one whitespace byte ends the header
    magic, w, h, maxval = fields[0], int(fields[1]), int(fields[2]), int(fields[3])
    if magic != b"P5" or maxval > 255:
        raise SystemExit(f"{path}: not an 8-bit binary PGM")
    pixels = data[pos:pos + w * h]
    if len(pixels) != w * h:
        raise SystemExit(f"{path}: truncated")
    return w, h, pixels


def write_png(path, w, h, pixels):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    raw = b"".join(b"\0" + pixels[y * w:(y + 1) * w] for y in range(h))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    open(path, "wb").write(png)


args = sys.argv[1:]
if not args or len(args) % 2:
    raise SystemExit(__doc__)
for src, dst in zip(args[::2], args[1::2]):
    write_png(dst, *read_pgm(src))
