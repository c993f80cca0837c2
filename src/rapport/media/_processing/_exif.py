"""An image's location taken out of its metadata, without decoding or re-encoding it.

What others download of a photo must not say where it was taken. Re-encoding would strip
everything but also cost quality (a JPEG saved again loses detail) and change the bytes
of every photo; instead the location is cut out of the container: the EXIF GPS directory
(its pointer removed from the first directory, its entries and values overwritten with
zeros, every other offset left valid) and XMP packets that carry GPS coordinates. The
pixels, the colour profile and the rest of the metadata stay byte for byte what was
uploaded. Handled: JPEG (APP1 Exif and XMP), PNG (eXIf, XMP iTXt), WebP (EXIF, XMP) and
TIFF itself.
"""

from __future__ import annotations

import re
import struct
import zlib

GPS_IFD_TAG = 0x8825
# Bytes per value of each TIFF field type (TIFF 6.0 §2, plus 13 = IFD from the EXIF spec).
_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
_XMP_GPS = re.compile(rb"GPS(?:Latitude|Longitude|Altitude|DestLatitude|DestLongitude|Coordinates)")
_EXIF_HEADER = b"Exif\x00\x00"
_XMP_HEADERS = (b"http://ns.adobe.com/xap/1.0/\x00", b"http://ns.adobe.com/xmp/extension/\x00")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Read no more of a compressed XMP packet than this to look for coordinates.
_XMP_INFLATE_LIMIT = 4 * 1024 * 1024


def remove_location(data: bytes) -> bytes | None:
    """The same image without location metadata, or None when it carries none (or is in a
    container not handled here, whose metadata the thumbnails never copy anyway)."""
    if data.startswith(b"\xff\xd8"):
        return _jpeg(data)
    if data.startswith(_PNG_SIGNATURE):
        return _png(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        tiff = bytearray(data)
        return bytes(tiff) if drop_gps(tiff) else None
    return None


def drop_gps(tiff: bytearray) -> bool:
    """Remove the GPS directory of a TIFF structure (an EXIF block is one) in place,
    keeping its length and every other offset; returns whether there was one."""
    if len(tiff) < 8 or bytes(tiff[:2]) not in (b"II", b"MM"):
        return False
    order = "<" if tiff[:2] == b"II" else ">"
    if struct.unpack_from(order + "H", tiff, 2)[0] != 42:
        return False
    ifd0 = struct.unpack_from(order + "I", tiff, 4)[0]
    if ifd0 + 2 > len(tiff):
        return False
    count = struct.unpack_from(order + "H", tiff, ifd0)[0]
    entries_end = ifd0 + 2 + 12 * count
    if entries_end + 4 > len(tiff):
        return False
    for index in range(count):
        entry = ifd0 + 2 + 12 * index
        if struct.unpack_from(order + "H", tiff, entry)[0] != GPS_IFD_TAG:
            continue
        _erase_directory(tiff, order, struct.unpack_from(order + "I", tiff, entry + 8)[0])
        # The later entries and the next-directory offset move up one entry; the freed
        # twelve bytes at the end become zeros (unreferenced padding).
        tiff[entry : entries_end + 4 - 12] = tiff[entry + 12 : entries_end + 4]
        tiff[entries_end + 4 - 12 : entries_end + 4] = bytes(12)
        struct.pack_into(order + "H", tiff, ifd0, count - 1)
        return True
    return False


def _erase_directory(tiff: bytearray, order: str, offset: int) -> None:
    """Zero a directory's entries and the values stored outside them."""
    if offset < 8 or offset + 2 > len(tiff):
        return
    count = struct.unpack_from(order + "H", tiff, offset)[0]
    end = min(offset + 2 + 12 * count + 4, len(tiff))
    for index in range(count):
        entry = offset + 2 + 12 * index
        if entry + 12 > len(tiff):
            break
        kind, values = struct.unpack_from(order + "HI", tiff, entry + 2)
        size = _TYPE_SIZES.get(kind, 1) * values
        if size > 4:
            start = struct.unpack_from(order + "I", tiff, entry + 8)[0]
            stop = min(start + size, len(tiff))
            if 8 <= start < stop:
                tiff[start:stop] = bytes(stop - start)
    tiff[offset:end] = bytes(end - offset)


def _xmp_has_location(packet: bytes) -> bool:
    return _XMP_GPS.search(packet) is not None


def _jpeg(data: bytes) -> bytes | None:
    pieces: list[bytes] = [data[:2]]
    position = 2
    changed = False
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            pieces.append(data[position : position + 1])
            position += 1
            continue
        if marker == 0xDA or marker == 0xD9:  # start of scan, end of image: entropy-coded data follows
            break
        length = struct.unpack_from(">H", data, position + 2)[0]
        segment_end = position + 2 + length
        if length < 2 or segment_end > len(data):
            break
        segment = data[position:segment_end]
        if marker == 0xE1:
            payload = segment[4:]
            if payload.startswith(_EXIF_HEADER):
                tiff = bytearray(payload[len(_EXIF_HEADER) :])
                if drop_gps(tiff):
                    segment = segment[:4] + _EXIF_HEADER + bytes(tiff)
                    changed = True
            elif payload.startswith(_XMP_HEADERS) and _xmp_has_location(payload):
                # The whole packet goes: editing XML in place could leave it invalid, and
                # what else it says (ratings, editing history) is not worth that risk.
                segment = b""
                changed = True
        pieces.append(segment)
        position = segment_end
    if not changed:
        return None
    pieces.append(data[position:])
    return b"".join(pieces)


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_xmp_has_location(body: bytes) -> bool:
    keyword, _, rest = body.partition(b"\x00")
    if keyword != b"XML:com.adobe.xmp" or len(rest) < 2:
        return False
    compressed = rest[0] == 1
    # After the flags: language tag and translated keyword, each NUL-terminated.
    text = rest[2:].split(b"\x00", 2)[-1]
    if compressed:
        try:
            text = zlib.decompressobj().decompress(text, _XMP_INFLATE_LIMIT)
        except zlib.error:
            return False
    return _xmp_has_location(text)


def _png(data: bytes) -> bytes | None:
    pieces: list[bytes] = [_PNG_SIGNATURE]
    position = len(_PNG_SIGNATURE)
    changed = False
    while position + 12 <= len(data):
        length = struct.unpack_from(">I", data, position)[0]
        kind = data[position + 4 : position + 8]
        chunk_end = position + 12 + length
        if chunk_end > len(data):
            break
        chunk = data[position:chunk_end]
        body = data[position + 8 : position + 8 + length]
        if kind == b"eXIf":
            tiff = bytearray(body)
            if drop_gps(tiff):
                chunk = _png_chunk(kind, bytes(tiff))
                changed = True
        elif kind == b"iTXt" and _png_xmp_has_location(body):
            chunk = b""
            changed = True
        pieces.append(chunk)
        position = chunk_end
        if kind == b"IEND":
            break
    if not changed:
        return None
    pieces.append(data[position:])
    return b"".join(pieces)


def _webp(data: bytes) -> bytes | None:
    pieces: list[bytes] = []
    position = 12
    changed = False
    dropped_xmp = False
    while position + 8 <= len(data):
        kind = data[position : position + 4]
        length = struct.unpack_from("<I", data, position + 4)[0]
        chunk_end = position + 8 + length + (length & 1)
        if chunk_end > len(data):
            break
        chunk = data[position:chunk_end]
        if kind == b"EXIF":
            payload = chunk[8 : 8 + length]
            # Some writers keep JPEG's "Exif\0\0" prefix inside the chunk.
            skip = len(_EXIF_HEADER) if payload.startswith(_EXIF_HEADER) else 0
            tiff = bytearray(payload[skip:])
            if drop_gps(tiff):
                chunk = chunk[:8] + payload[:skip] + bytes(tiff) + chunk[8 + length :]
                changed = True
        elif kind == b"XMP " and _xmp_has_location(chunk[8 : 8 + length]):
            chunk = b""
            changed = dropped_xmp = True
        pieces.append(chunk)
        position = chunk_end
    if not changed:
        return None
    body = b"".join(pieces) + data[position:]
    if dropped_xmp and body[:4] == b"VP8X":
        # The extended header's flags say whether an XMP chunk follows (bit 2).
        flags = body[8] & ~0x04
        body = body[:8] + bytes([flags]) + body[9:]
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body
