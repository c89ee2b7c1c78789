"""A horizontal bar chart written as PNG with the standard library only (zlib + struct).

The bench must not add plotting libraries to fastgw's dependencies, and a matplotlib path
that CI never runs would be an untested twin; so this is the only chart writer. Text uses a
built-in 5x7 bitmap font (upper case, digits, a little punctuation), drawn at 2x.
"""
from __future__ import annotations

import struct
import zlib
from typing import Sequence

Color = tuple[int, int, int]

WHITE: Color = (255, 255, 255)
BLACK: Color = (20, 20, 20)
GRID: Color = (225, 225, 225)
RED: Color = (200, 30, 30)
# Bar colours by row-name prefix (first match wins); anything else is grey.
PALETTE: tuple[tuple[str, Color], ...] = (
    ("fastgw", (52, 101, 164)),
    ("nginx", (78, 154, 6)),
    ("haproxy", (206, 92, 0)),
)
OTHER: Color = (140, 140, 140)

SCALE = 2  # font pixels per glyph pixel
GLYPH_W, GLYPH_H = 5, 7
ADVANCE = (GLYPH_W + 1) * SCALE
LINE_H = (GLYPH_H + 4) * SCALE

# 5x7 glyphs, rows top to bottom, '#' = ink. Text is upper-cased (see Canvas.text).
_FONT_SRC = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "####. ....# ....# .###. ....# ....# ####.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    "x": "..... ..... #...# .#.#. ..#.. .#.#. #...#",
    " ": "..... ..... ..... ..... ..... ..... .....",
    "-": "..... ..... ..... ##### ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "/": "....# ....# ...#. ..#.. .#... #.... #....",
    "%": "##..# ##..# ...#. ..#.. .#... #..## #..##",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
    "!": "..#.. ..#.. ..#.. ..#.. ..#.. ..... ..#..",
    "?": ".###. #...# ....# ...#. ..#.. ..... ..#..",
}
FONT: dict[str, tuple[str, ...]] = {ch: tuple(src.split()) for ch, src in _FONT_SRC.items()}


class Canvas:
    """An RGB pixel buffer with rectangles and text, encoded to PNG."""

    def __init__(self, width: int, height: int, background: Color = WHITE) -> None:
        self.width = width
        self.height = height
        self.pixels = bytearray(bytes(background) * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.width, x + w), min(self.height, y + h)
        if x1 <= x0 or y1 <= y0:
            return
        line = bytes(color) * (x1 - x0)
        for row in range(y0, y1):
            start = (row * self.width + x0) * 3
            self.pixels[start:start + len(line)] = line

    def text(self, x: int, y: int, s: str, color: Color = BLACK) -> int:
        """Draw `s` with its top-left corner at (x, y); returns the x after the last glyph."""
        prev = ""
        for ch in s:
            # Text prints upper case; a lower-case "x" after a digit is the ratio sign (1.02x).
            key = ch if (ch == "x" and prev.isdigit()) else ch.upper()
            glyph = FONT.get(key) or FONT["?"]
            prev = ch
            for gy, bits in enumerate(glyph):
                for gx, bit in enumerate(bits):
                    if bit == "#":
                        self.rect(x + gx * SCALE, y + gy * SCALE, SCALE, SCALE, color)
            x += ADVANCE
        return x

    def pixel(self, x: int, y: int) -> Color:
        i = (y * self.width + x) * 3
        return (self.pixels[i], self.pixels[i + 1], self.pixels[i + 2])

    def png(self) -> bytes:
        stride = self.width * 3
        raw = b"".join(b"\x00" + bytes(self.pixels[r * stride:(r + 1) * stride])
                       for r in range(self.height))  # filter type 0 (None) on every row

        def chunk(kind: bytes, data: bytes) -> bytes:
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

        ihdr = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)  # 8-bit RGB
        return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def color_for(label: str) -> Color:
    for prefix, color in PALETTE:
        if label.startswith(prefix):
            return color
    return OTHER


def text_width(s: str) -> int:
    return len(s) * ADVANCE


def bar_chart(title: str, panels: Sequence[tuple[str, Sequence[tuple[str, float | None, str]]]],
              width: int = 1000) -> Canvas:
    """Panels of horizontal bars. Each panel: (heading, [(label, value or None, value_text)]).

    A None value draws no bar and prints its value_text in red (a row that failed)."""
    pad = 16
    bar_h = 18
    row_h = bar_h + 10
    label_w = max((text_width(lbl) for _, rows in panels for lbl, _, _ in rows), default=0) + pad
    value_w = max((text_width(t) for _, rows in panels for _, _, t in rows), default=0) + pad
    height = pad + LINE_H * 2 + sum(LINE_H + row_h * len(rows) + pad for _, rows in panels)
    c = Canvas(width, height)
    y = pad
    c.text(pad, y, title)
    y += LINE_H * 2
    bar_x = pad + label_w
    bar_max_w = max(10, width - bar_x - value_w - pad)
    for heading, rows in panels:
        c.text(pad, y, heading)
        y += LINE_H
        top = max((v for _, v, _ in rows if v is not None), default=0.0) or 1.0
        for q in range(5):  # light grid at 0, 25, 50, 75, 100 % of the panel's maximum
            c.rect(bar_x + round(bar_max_w * q / 4), y, 1, row_h * len(rows), GRID)
        for label, value, value_text in rows:
            c.text(pad, y + (bar_h - GLYPH_H * SCALE) // 2, label)
            if value is None:
                c.text(bar_x + 4, y + (bar_h - GLYPH_H * SCALE) // 2, value_text, RED)
            else:
                w = max(1, round(bar_max_w * value / top))
                c.rect(bar_x, y, w, bar_h, color_for(label))
                c.text(bar_x + w + 6, y + (bar_h - GLYPH_H * SCALE) // 2, value_text)
            y += row_h
        y += pad
    return c
