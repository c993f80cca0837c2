"""What is read and made from an uploaded image: its dimensions, transparency, dominant
colour and blurhash, and three thumbnails, with Pillow.

An image is a small file that can claim to be an enormous picture (a "decompression
bomb": a few kilobytes declaring 100 000 × 100 000 pixels would take 40 GB once decoded).
The header is read first and an image past `MAX_PIXELS` or `MAX_SIDE` is refused before
any pixel is decoded. JPEGs are decoded straight at a reduced scale (`draft`), so a
40-megapixel photo costs the memory of the largest thumbnail, not of the photo.

Everything here is synchronous and CPU-bound: the job runs it in a thread.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from PIL import Image, ImageOps, UnidentifiedImageError, features

from rapport.media._processing import _blurhash

# 40 megapixels: past any phone camera of today (a 48 MP sensor saves 12 MP by default),
# and about 160 MB of RGBA once decoded, which a worker can afford one or two of.
MAX_PIXELS: Final = 40_000_000
# A side longer than this is no photo (a 30 000 × 1 333 strip is still within MAX_PIXELS).
MAX_SIDE: Final = 30_000
# Pillow's own guard, set to the same bound: it warns past it and refuses twice past it.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

# The longest side of each thumbnail's box; an image smaller than a box is kept as it is.
SIZES: Final = {"small": 96, "medium": 320, "large": 1024}
BLURHASH_COMPONENTS: Final = (4, 3)
# Blurhash and the dominant colour are read from a copy this small: a few thousand pixels
# say as much about the colours as millions, at a fraction of the time.
_ANALYSIS_SIDE = 64
# EXIF orientations 5 to 8 turn the picture a quarter: width and height change places.
_QUARTER_TURNS = frozenset({5, 6, 7, 8})
_ORIENTATION_TAG = 0x0112
_MAKE, _MODEL, _DATE_TIME = 0x010F, 0x0110, 0x0132
_EXIF_IFD, _GPS_IFD, _DATE_TIME_ORIGINAL = 0x8769, 0x8825, 0x9003

WEBP: Final = features.check("webp")
THUMBNAIL_TYPE: Final = "image/webp" if WEBP else "image/jpeg"


class ImageRefused(Exception):
    """The image cannot be processed, for a reason that will not change on another try."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ImageUnsupported(ImageRefused):
    """Bytes in a format Pillow cannot decode (HEIC without its plugin, say): no thumbnails,
    and nothing wrong with the file for that."""


@dataclass(frozen=True)
class Thumbnail:
    size: str  # small | medium | large
    data: bytes
    width: int
    height: int
    content_type: str


@dataclass(frozen=True)
class ImageFacts:
    format: str | None
    width: int  # as displayed, after the EXIF orientation
    height: int
    has_alpha: bool  # whether some pixel is not fully opaque
    dominant_color: str  # '#rrggbb'
    blurhash: str
    animated: bool
    thumbnails: tuple[Thumbnail, ...]


def check_dimensions(width: int, height: int) -> None:
    """Raises:
    ImageRefused: dimensions no photo has, or more pixels than may be decoded."""
    if width <= 0 or height <= 0:
        raise ImageRefused("The image declares no pixels.")
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ImageRefused(
            f"The image declares {width} × {height} pixels, more than the {MAX_PIXELS:,} that may be decoded "
            "(a decompression bomb, or a picture too large to process)."
        )


def process_image(path: Path) -> ImageFacts:
    """Read an image's facts and make its thumbnails.

    Raises:
        ImageRefused: not an image Pillow can decode, or too large to decode.
    """
    try:
        with warnings.catch_warnings():
            # Past MAX_PIXELS Pillow only warns; here that is a refusal like any other.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return _process(image)
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRefused(f"The image is too large to decode, a decompression bomb or close: {error}") from error
    except UnidentifiedImageError as error:
        raise ImageUnsupported("The file is not an image that can be decoded here.") from error
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as error:
        # Truncated or corrupt data, as Pillow's decoders report it.
        raise ImageRefused(f"The image cannot be decoded: {error}") from error


def _process(image: Image.Image) -> ImageFacts:
    check_dimensions(*image.size)
    orientation = image.getexif().get(_ORIENTATION_TAG)
    width, height = image.size
    if orientation in _QUARTER_TURNS:
        width, height = height, width
    animated = bool(getattr(image, "is_animated", False))
    icc_profile = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA") else None
    if image.format == "JPEG":
        # Decode at the smallest scale (1/2, 1/4, 1/8) still covering the largest thumbnail.
        largest = max(SIZES.values())
        image.draft(None, (largest, largest))
    image.load()
    picture = _normalised(ImageOps.exif_transpose(image))
    has_alpha = picture.mode == "RGBA"
    thumbnails = _thumbnails(picture, icc_profile=icc_profile)
    analysis = picture.copy()
    analysis.thumbnail((_ANALYSIS_SIDE, _ANALYSIS_SIDE), Image.Resampling.BILINEAR)
    return ImageFacts(
        format=image.format,
        width=width,
        height=height,
        has_alpha=has_alpha,
        dominant_color=dominant_color(analysis),
        blurhash=blurhash_of(analysis),
        animated=animated,
        thumbnails=thumbnails,
    )


def camera_facts(path: Path) -> dict[str, Any]:
    """What a photo's EXIF says that is worth showing beside it (camera, when it was taken),
    read from the header alone. Never its location: the file's metadata is shown to
    everyone who may read the file, and the location is what the public variant removes."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                exif = image.getexif()
                photo = exif.get_ifd(_EXIF_IFD)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, UnidentifiedImageError, OSError, ValueError):
        # Nothing to show; the thumbnails step says what is wrong with the image.
        return {}
    facts: dict[str, Any] = {}
    for name, value in (
        ("camera_make", exif.get(_MAKE)),
        ("camera_model", exif.get(_MODEL)),
        ("taken_at", photo.get(_DATE_TIME_ORIGINAL) or exif.get(_DATE_TIME)),
    ):
        if isinstance(value, str) and value.strip("\x00 "):
            facts[name] = value.replace("\x00", "").strip()[:100]
    if exif.get(_GPS_IFD):
        facts["had_location"] = True
    return facts


def _normalised(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when some pixel is transparent."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit and float greys: scaled to 8 bits, not clipped to white.
        low, high = cast(tuple[float, float], image.getextrema())
        scale = 255 / (float(high) - float(low)) if high != low else 0.0
        image = image.convert("F").point(lambda value: (value - low) * scale).convert("L")
    transparent = "A" in image.getbands() or (image.mode == "P" and "transparency" in image.info)
    if transparent:
        rgba = image.convert("RGBA")
        opaque_at_least, _ = cast(tuple[int, int], rgba.getchannel("A").getextrema())
        if opaque_at_least < 255:
            return rgba
        return rgba.convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _thumbnails(picture: Image.Image, *, icc_profile: bytes | None) -> tuple[Thumbnail, ...]:
    made: list[Thumbnail] = []
    source = picture
    # Largest first, each from the one before: the same quality (Lanczos over a factor of
    # about three each time) for far less work than three reductions of the original.
    for size, side in sorted(SIZES.items(), key=lambda item: -item[1]):
        reduced = source.copy()
        reduced.thumbnail((side, side), Image.Resampling.LANCZOS)  # never enlarges
        made.append(
            Thumbnail(size, _encode(reduced, icc_profile=icc_profile), reduced.width, reduced.height, THUMBNAIL_TYPE)
        )
        source = reduced
    return tuple(sorted(made, key=lambda thumbnail: SIZES[thumbnail.size]))


def _encode(image: Image.Image, *, icc_profile: bytes | None) -> bytes:
    out = io.BytesIO()
    extra = {"icc_profile": icc_profile} if icc_profile else {}
    if WEBP:
        image.save(out, "WEBP", quality=80, method=4, **extra)
    else:
        if image.mode == "RGBA":
            image = _on_white(image)
        image.save(out, "JPEG", quality=85, optimize=True, progressive=True, **extra)
    return out.getvalue()


def _on_white(image: Image.Image) -> Image.Image:
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def dominant_color(image: Image.Image) -> str:
    """The most common colour of the visible pixels, as '#rrggbb': the colour a client
    paints while the picture loads. Colours are grouped into a few clusters first, so that
    a photo's sky of a thousand slightly different blues counts as one blue."""
    raw = image.convert("RGBA").tobytes()
    pixels = [raw[at : at + 4] for at in range(0, len(raw), 4)]
    visible = b"".join(pixel[:3] for pixel in pixels if pixel[3] >= 128) or b"".join(pixel[:3] for pixel in pixels)
    strip = Image.frombytes("RGB", (len(visible) // 3, 1), visible)
    clustered = strip.quantize(colors=8, method=Image.Quantize.MEDIANCUT)
    counts = cast(list[tuple[int, int]], clustered.getcolors() or [(1, 0)])  # a palette image: indexes
    _, index = max(counts)
    palette = clustered.getpalette() or [0, 0, 0]
    red, green, blue = palette[3 * index : 3 * index + 3]
    return f"#{red:02x}{green:02x}{blue:02x}"


def blurhash_of(image: Image.Image) -> str:
    """The blurhash (4 × 3 components) of a small image; transparency is shown on white,
    as most clients' backgrounds are."""
    opaque = _on_white(image) if image.mode == "RGBA" else image.convert("RGB")
    return _blurhash.encode(opaque, *BLURHASH_COMPONENTS)
