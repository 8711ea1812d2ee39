"""PNG bar charts of the speedup per case (log scale), one per suite, with no plotting dependency.

A tiny rasteriser (8-bit palette canvas, rectangles, lines, a built-in 5x7 bitmap font; lower-case letters
are drawn as capitals except 'x') and a PNG writer (zlib + struct: IHDR, PLTE, IDAT, IEND; filter 0).
Chart: one horizontal bar per row with a finite ratio, from the 1x line to the ratio on a log10 axis
(decade grid lines and labels); green where Lightning Core is faster (ratio > 1), red where the peer is;
the row label on the left ("case [mode vs peer]"), the ratio on the right.
Tested by tests/python/test_bench_harness.py (signature, IHDR size, zlib-decodable, a bar's pixels).
"""
from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

# palette indices
WHITE, BLACK, GREY, GREEN, RED, BLUE, LIGHT = range(7)
PALETTE = [(255, 255, 255), (0, 0, 0), (170, 170, 170), (46, 160, 67), (215, 58, 73), (3, 102, 214),
           (232, 232, 232)]

_GLYPHS = {
    "0": "01110 10001 10011 10101 11001 10001 01110", "1": "00100 01100 00100 00100 00100 00100 01110",
    "2": "01110 10001 00001 00010 00100 01000 11111", "3": "11111 00010 00100 00010 00001 10001 01110",
    "4": "00010 00110 01010 10010 11111 00010 00010", "5": "11111 10000 11110 00001 00001 10001 01110",
    "6": "00110 01000 10000 11110 10001 10001 01110", "7": "11111 00001 00010 00100 01000 01000 01000",
    "8": "01110 10001 10001 01110 10001 10001 01110", "9": "01110 10001 10001 01111 00001 00010 01100",
    "A": "01110 10001 10001 11111 10001 10001 10001", "B": "11110 10001 10001 11110 10001 10001 11110",
    "C": "01110 10001 10000 10000 10000 10001 01110", "D": "11100 10010 10001 10001 10001 10010 11100",
    "E": "11111 10000 10000 11110 10000 10000 11111", "F": "11111 10000 10000 11110 10000 10000 10000",
    "G": "01110 10001 10000 10111 10001 10001 01111", "H": "10001 10001 10001 11111 10001 10001 10001",
    "I": "01110 00100 00100 00100 00100 00100 01110", "J": "00111 00010 00010 00010 00010 10010 01100",
    "K": "10001 10010 10100 11000 10100 10010 10001", "L": "10000 10000 10000 10000 10000 10000 11111",
    "M": "10001 11011 10101 10101 10001 10001 10001", "N": "10001 10001 11001 10101 10011 10001 10001",
    "O": "01110 10001 10001 10001 10001 10001 01110", "P": "11110 10001 10001 11110 10000 10000 10000",
    "Q": "01110 10001 10001 10001 10101 10010 01101", "R": "11110 10001 10001 11110 10100 10010 10001",
    "S": "01111 10000 10000 01110 00001 00001 11110", "T": "11111 00100 00100 00100 00100 00100 00100",
    "U": "10001 10001 10001 10001 10001 10001 01110", "V": "10001 10001 10001 10001 10001 01010 00100",
    "W": "10001 10001 10001 10101 10101 10101 01010", "X": "10001 10001 01010 00100 01010 10001 10001",
    "Y": "10001 10001 10001 01010 00100 00100 00100", "Z": "11111 00001 00010 00100 01000 10000 11111",
    "x": "00000 00000 10001 01010 00100 01010 10001", " ": "00000 00000 00000 00000 00000 00000 00000",
    ".": "00000 00000 00000 00000 00000 01100 01100", ",": "00000 00000 00000 00000 01100 00100 01000",
    ":": "00000 01100 01100 00000 01100 01100 00000", ";": "00000 01100 01100 00000 01100 00100 01000",
    "=": "00000 00000 11111 00000 11111 00000 00000", "/": "00000 00001 00010 00100 01000 10000 00000",
    "-": "00000 00000 00000 11111 00000 00000 00000", "_": "00000 00000 00000 00000 00000 00000 11111",
    "+": "00000 00100 00100 11111 00100 00100 00000", "(": "00010 00100 01000 01000 01000 00100 00010",
    ")": "01000 00100 00010 00010 00010 00100 01000", "<": "00010 00100 01000 10000 01000 00100 00010",
    ">": "01000 00100 00010 00001 00010 00100 01000", "%": "11000 11001 00010 00100 01000 10011 00011",
    "*": "00000 00100 10101 01110 10101 00100 00000", "|": "00100 00100 00100 00100 00100 00100 00100",
    "[": "01110 01000 01000 01000 01000 01000 01110", "]": "01110 00010 00010 00010 00010 00010 01110",
    "'": "01100 00100 01000 00000 00000 00000 00000", "!": "00100 00100 00100 00100 00100 00000 00100",
    "?": "01110 10001 00001 00010 00100 00000 00100", "#": "01010 01010 11111 01010 11111 01010 01010",
    "^": "00100 01010 10001 00000 00000 00000 00000",
}
FONT = {c: [int(r, 2) for r in g.split()] for c, g in _GLYPHS.items()}
CHAR_W, CHAR_H = 6, 7  # 5 pixels + 1 space; 7 rows


class Canvas:
    """An 8-bit palette image: pixels[y * width + x] = palette index."""

    def __init__(self, width: int, height: int, bg: int = WHITE):
        self.width, self.height = int(width), int(height)
        self.pixels = bytearray([bg]) * (self.width * self.height)
        self.bars: list[tuple[int, int, int, int, int]] = []  # (x0, y0, x1, y1, color) of drawn bars

    def rect(self, x0, y0, x1, y1, color):
        """Fills [x0, x1) x [y0, y1), clipped."""
        x0, x1 = max(0, min(x0, x1)), min(self.width, max(x0, x1))
        y0, y1 = max(0, min(y0, y1)), min(self.height, max(y0, y1))
        if x1 <= x0:
            return
        line = bytes([color]) * (x1 - x0)
        for y in range(y0, y1):
            o = y * self.width
            self.pixels[o + x0:o + x1] = line

    def vline(self, x, y0, y1, color):
        self.rect(x, y0, x + 1, y1, color)

    def hline(self, x0, x1, y, color):
        self.rect(x0, y, x1, y + 1, color)

    def get(self, x, y) -> int:
        return self.pixels[y * self.width + x]

    def text(self, x, y, s, color=BLACK):
        for i, ch in enumerate(str(s)):
            rows = FONT.get(ch) or FONT.get(ch.upper()) or FONT["?"]
            for dy, bits in enumerate(rows):
                for dx in range(5):
                    if bits & (1 << (4 - dx)):
                        px, py = x + i * CHAR_W + dx, y + dy
                        if 0 <= px < self.width and 0 <= py < self.height:
                            self.pixels[py * self.width + px] = color


def encode_png(canvas: Canvas, palette=PALETTE) -> bytes:
    """The canvas as an 8-bit indexed PNG (colour type 3), every scanline with filter 0."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    w, h = canvas.width, canvas.height
    raw = bytearray()
    for y in range(h):
        raw.append(0)
        raw += canvas.pixels[y * w:(y + 1) * w]
    plte = b"".join(bytes(c) for c in palette)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", plte) + chunk(b"IDAT", zlib.compress(bytes(raw), 9)) + chunk(b"IEND", b""))


MAX_LABEL = 60
PLOT_W, ROW_H, BAR_H, MARGIN = 420, 12, 8, 10


def _label(r: dict) -> str:
    mode = {"one_shot": "one-shot", "resident": "resident", "graph": "graph"}.get(r.get("mode"), str(r.get("mode")))
    case, tail = str(r.get("case", "?")), f" [{mode} vs {r.get('peer', '?')}]"
    if len(case) + len(tail) > MAX_LABEL:  # shorten the case, keep the mode and peer
        case = case[:max(8, MAX_LABEL - len(tail) - 2)] + ".."
    return case + tail


def render_chart(title: str, rows: list[dict]) -> Canvas:
    """The speedup chart of `rows` (harness schema; rows without a finite positive ratio are left out)."""
    items = [(r, float(r["ratio"])) for r in rows
             if isinstance(r.get("ratio"), (int, float)) and math.isfinite(r["ratio"]) and r["ratio"] > 0]
    labels = [_label(r) for r, _ in items]
    logs = [math.log10(v) for _, v in items]
    lo = max(-3, min([-1] + [math.floor(v) for v in logs]))
    hi = min(4, max([1] + [math.ceil(v) for v in logs]))
    label_w = CHAR_W * max([len(s) for s in labels] + [10])
    value_w = CHAR_W * 9
    x_plot = MARGIN + label_w + 8
    top = MARGIN + 2 * (CHAR_H + 5)
    width = max(x_plot + PLOT_W + 8 + value_w + MARGIN, MARGIN * 2 + CHAR_W * len(title))
    height = top + ROW_H * max(1, len(items)) + 4 + CHAR_H + 6 + MARGIN
    c = Canvas(width, height)
    c.text(MARGIN, MARGIN, title, BLACK)
    c.text(MARGIN, MARGIN + CHAR_H + 5, "peer ms / ours ms, log scale; right of 1x (green): Lightning Core faster",
           GREY)
    bottom = top + ROW_H * max(1, len(items))

    def xpos(lv: float) -> int:
        lv = min(max(lv, lo), hi)
        return x_plot + int(round((lv - lo) / (hi - lo) * (PLOT_W - 1)))

    for d in range(lo, hi + 1):  # decade grid and tick labels
        x = xpos(d)
        c.vline(x, top, bottom, LIGHT)
        tick = f"{10.0 ** d:g}x"
        c.text(x - len(tick) * CHAR_W // 2, bottom + 4, tick, BLACK)
    x1 = xpos(0.0)
    if not items:
        c.text(x_plot + 4, top + 2, "no rows with a finite ratio", GREY)
    for i, ((r, v), lab, lv) in enumerate(zip(items, labels, logs)):
        y = top + i * ROW_H + (ROW_H - BAR_H) // 2
        c.text(MARGIN, y, lab, BLACK)
        xb = xpos(lv)
        color = GREEN if v > 1.0 else RED
        x0, x_end = (x1, max(xb, x1 + 1)) if v >= 1.0 else (min(xb, x1 - 1), x1)
        c.rect(x0, y, x_end, y + BAR_H, color)
        c.bars.append((x0, y, x_end, y + BAR_H, color))
        c.text(x_plot + PLOT_W + 8, y, f"{v:.2f}x", BLACK)
    c.vline(x1, top - 2, bottom + 2, BLACK)  # the 1x line, drawn last
    c.hline(x_plot, x_plot + PLOT_W, bottom, GREY)
    return c


def write_chart(path: Path, title: str, rows: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(render_chart(title, rows)))
    return path
