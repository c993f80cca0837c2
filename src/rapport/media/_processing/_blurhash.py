"""The blurhash of a small image (blurha.sh): a few dozen characters a client turns into
a blurred placeholder while the picture loads.

The algorithm of the reference encoder, written out here because the Python binding reads
pixels through `Image.getdata`, which Pillow deprecates and removes in its version 14.
It runs on the thumbnail-sized copy processing makes anyway: a few thousand pixels, a
few milliseconds.
"""

from __future__ import annotations

import math
from typing import Final

from PIL import Image

_BASE83: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"
# sRGB byte → linear light, once for all 256 values.
_LINEAR: Final = [
    value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4 for value in (v / 255 for v in range(256))
]


def _base83(value: int, length: int) -> str:
    return "".join(_BASE83[(value // 83 ** (length - 1 - place)) % 83] for place in range(length))


def _to_srgb(value: float) -> int:
    value = min(max(value, 0.0), 1.0)
    if value <= 0.0031308:
        return int(value * 12.92 * 255 + 0.5)
    return int((1.055 * value ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _signed_root(value: float) -> float:
    return math.copysign(abs(value) ** 0.5, value)


def encode(image: Image.Image, x_components: int, y_components: int) -> str:
    """The blurhash of an RGB image, with 1 to 9 components each way."""
    if not (1 <= x_components <= 9 and 1 <= y_components <= 9):
        raise ValueError("blurhash takes 1 to 9 components in each direction")
    rgb = image.convert("RGB")
    width, height = rgb.size
    raw = rgb.tobytes()
    red = [_LINEAR[byte] for byte in raw[0::3]]
    green = [_LINEAR[byte] for byte in raw[1::3]]
    blue = [_LINEAR[byte] for byte in raw[2::3]]
    factors: list[tuple[float, float, float]] = []
    for j in range(y_components):
        rows = [math.cos(math.pi * j * y / height) for y in range(height)]
        for i in range(x_components):
            columns = [math.cos(math.pi * i * x / width) for x in range(width)]
            weights = [row * column for row in rows for column in columns]
            scale = (1 if i == 0 and j == 0 else 2) / (width * height)
            factors.append(
                (
                    scale * math.fsum(map(float.__mul__, weights, red)),
                    scale * math.fsum(map(float.__mul__, weights, green)),
                    scale * math.fsum(map(float.__mul__, weights, blue)),
                )
            )
    dc, ac = factors[0], factors[1:]
    parts = [_base83((x_components - 1) + (y_components - 1) * 9, 1)]
    if ac:
        largest = max(abs(value) for factor in ac for value in factor)
        quantised = max(0, min(82, math.floor(largest * 166 - 0.5)))
        maximum = (quantised + 1) / 166
        parts.append(_base83(quantised, 1))
    else:
        maximum = 1.0
        parts.append(_base83(0, 1))
    parts.append(_base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4))
    for factor in ac:
        red_q, green_q, blue_q = (
            max(0, min(18, math.floor(_signed_root(value / maximum) * 9 + 9.5))) for value in factor
        )
        parts.append(_base83(red_q * 19 * 19 + green_q * 19 + blue_q, 2))
    return "".join(parts)
