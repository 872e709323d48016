#!/usr/bin/env python3
"""Counts the pixels of each colour asked for in a PNG screenshot (8-bit RGB or RGBA, not
interlaced, as Chromium writes them), with the standard library only (zlib and the five
PNG filters). Prints one count per colour, in the order given.
Usage: colours.py FILE.png RRGGBB..."""
import struct
import sys
import zlib

data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
position, idat, header = 8, b"", None
while position < len(data):
    length, kind = struct.unpack(">I4s", data[position:position + 8])
    body = data[position + 8:position + 8 + length]
    if kind == b"IHDR":
        header = struct.unpack(">IIBBBBB", body)
    elif kind == b"IDAT":
        idat += body
    position += 12 + length
width, height, depth, colour, _, _, interlace = header
assert depth == 8 and colour in (2, 6) and interlace == 0, header
channels = 3 if colour == 2 else 4
raw = zlib.decompress(idat)
stride = width * channels
wanted = [bytes.fromhex(hexa) for hexa in sys.argv[2:]]
counts = [0] * len(wanted)
previous = bytearray(stride)
offset = 0
for _ in range(height):
    kind, line = raw[offset], bytearray(raw[offset + 1:offset + 1 + stride])
    offset += 1 + stride
    for index in range(stride):
        left = line[index - channels] if index >= channels else 0
        up = previous[index]
        corner = previous[index - channels] if index >= channels else 0
        if kind == 1:
            line[index] = (line[index] + left) & 255
        elif kind == 2:
            line[index] = (line[index] + up) & 255
        elif kind == 3:
            line[index] = (line[index] + (left + up) // 2) & 255
        elif kind == 4:
            estimate = left + up - corner
            a, b, c = abs(estimate - left), abs(estimate - up), abs(estimate - corner)
            line[index] = (line[index] + (left if a <= b and a <= c else up if b <= c else corner)) & 255
    for pixel in range(0, stride, channels):
        rgb = bytes(line[pixel:pixel + 3])
        for number, colour_wanted in enumerate(wanted):
            if rgb == colour_wanted:
                counts[number] += 1
    previous = line
print(" ".join(str(count) for count in counts))
