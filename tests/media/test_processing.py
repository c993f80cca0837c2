"""What processing reads and makes from an upload, without a database: thumbnails,
dimensions, transparency, dominant colour and blurhash of images; the location removed
from what others download; decompression bombs refused; audio metadata and PDF pages."""

from __future__ import annotations

import io
import struct
import wave
import zlib
from pathlib import Path

import blurhash
import pytest
from PIL import Image
from pypdf import PdfWriter

from rapport.media._processing import _blurhash, _exif, _images, _metadata
from rapport.media._processing._images import SIZES, ImageRefused

GPS = {1: "N", 2: (48.0, 51.0, 30.0), 3: "E", 4: (2.0, 17.0, 40.0), 6: 35.0}
RED, GREEN, BLUE = (220, 20, 60), (20, 200, 60), (30, 60, 220)


def save(image: Image.Image, path: Path, format: str, **options: object) -> Path:
    image.save(path, format, **options)
    return path


def exif_with(*, gps: bool = True, orientation: int | None = None) -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "Rapport Camera"  # Make
    exif[0x0110] = "Model 7"  # Model
    if orientation is not None:
        exif[0x0112] = orientation
    if gps:
        exif[_exif.GPS_IFD_TAG] = GPS
    return exif


def photo(width: int, height: int) -> Image.Image:
    """A picture with detail (a gradient and stripes), not a flat colour."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    for x in range(0, width, max(width // 10, 1)):
        image.paste(RED, (x, 0, min(x + max(width // 40, 1), width), height))
    return image


def fits(thumbnail: _images.Thumbnail, side: int) -> bool:
    return thumbnail.width <= side and thumbnail.height <= side and max(thumbnail.width, thumbnail.height) == side


def decoded(thumbnail: _images.Thumbnail) -> Image.Image:
    image = Image.open(io.BytesIO(thumbnail.data))
    image.load()
    return image


# -- thumbnails and facts --------------------------------------------------------------


def test_a_photo_gets_three_thumbnails_that_fit_their_boxes_and_keep_its_shape(tmp_path):
    path = save(photo(2400, 1600), tmp_path / "photo.jpg", "JPEG", quality=90)

    facts = _images.process_image(path)

    assert (facts.format, facts.width, facts.height, facts.has_alpha) == ("JPEG", 2400, 1600, False)
    assert [thumbnail.size for thumbnail in facts.thumbnails] == ["small", "medium", "large"]
    for thumbnail in facts.thumbnails:
        assert fits(thumbnail, SIZES[thumbnail.size])
        assert abs(thumbnail.width / thumbnail.height - 1.5) < 0.02
        assert thumbnail.content_type == _images.THUMBNAIL_TYPE == "image/webp"
        image = decoded(thumbnail)
        assert (image.format, image.size) == ("WEBP", (thumbnail.width, thumbnail.height))


def test_a_portrait_photo_fits_by_its_height(tmp_path):
    path = save(photo(900, 2000), tmp_path / "tall.png", "PNG")

    facts = _images.process_image(path)

    large = facts.thumbnails[-1]
    assert (large.width, large.height) == (461, 1024)


def test_a_small_image_is_never_enlarged(tmp_path):
    path = save(photo(150, 100), tmp_path / "icon.png", "PNG")

    facts = _images.process_image(path)

    sizes = {thumbnail.size: (thumbnail.width, thumbnail.height) for thumbnail in facts.thumbnails}
    assert sizes == {"small": (96, 64), "medium": (150, 100), "large": (150, 100)}


def test_transparency_is_kept_and_reported(tmp_path):
    image = Image.new("RGBA", (400, 300), (0, 0, 0, 0))
    image.paste((*GREEN, 255), (100, 75, 300, 225))
    path = save(image, tmp_path / "logo.png", "PNG")

    facts = _images.process_image(path)

    assert facts.has_alpha
    corner = decoded(facts.thumbnails[1]).convert("RGBA").getpixel((0, 0))
    assert corner[3] == 0
    # The colour of what shows, not of the transparent background.
    assert facts.dominant_color == "#14c83c"


def test_an_alpha_channel_that_hides_nothing_is_no_transparency(tmp_path):
    path = save(Image.new("RGBA", (50, 50), (*BLUE, 255)), tmp_path / "opaque.png", "PNG")

    assert not _images.process_image(path).has_alpha


@pytest.mark.parametrize("colour", [RED, GREEN, BLUE, (250, 250, 250)])
def test_the_dominant_colour_of_a_solid_image_is_that_colour(tmp_path, colour):
    path = save(Image.new("RGB", (640, 480), colour), tmp_path / "solid.png", "PNG")

    assert _images.process_image(path).dominant_color == "#{:02x}{:02x}{:02x}".format(*colour)


def test_the_dominant_colour_is_the_colour_covering_most_of_the_picture(tmp_path):
    image = Image.new("RGB", (300, 300), BLUE)
    image.paste(RED, (0, 0, 300, 100))  # a third red, two thirds blue
    path = save(image, tmp_path / "flag.png", "PNG")

    assert _images.process_image(path).dominant_color == "#1e3cdc"


def test_the_blurhash_has_four_by_three_components_and_decodes_to_the_picture(tmp_path):
    path = save(Image.new("RGB", (800, 600), RED), tmp_path / "red.png", "PNG")

    facts = _images.process_image(path)

    # One size character, one maximum, four of DC colour, two per AC component (11).
    assert len(facts.blurhash) == 28
    assert facts.blurhash[0] == "L"  # (4 - 1) + (3 - 1) × 9 = 21 in base 83
    assert blurhash.is_valid_blurhash(facts.blurhash)
    placeholder = blurhash.decode(facts.blurhash, 32, 24)
    assert placeholder.size == (32, 24)
    red, green, blue = placeholder.getpixel((16, 12))
    assert abs(red - RED[0]) <= 8 and abs(green - RED[1]) <= 8 and abs(blue - RED[2]) <= 8


@pytest.mark.filterwarnings("ignore:Image.Image.getdata is deprecated:DeprecationWarning")
@pytest.mark.parametrize("size", [(64, 48), (48, 64), (17, 5), (1, 1)])
def test_the_blurhash_is_the_reference_encoders(size):
    noise = Image.effect_noise(size, 80)
    image = Image.merge("RGB", [noise, noise.transpose(Image.Transpose.FLIP_LEFT_RIGHT), Image.new("L", size, 90)])

    # The reference binding closes the image it is given.
    assert _blurhash.encode(image, 4, 3) == blurhash.encode(image.copy(), 4, 3)


def test_exif_orientation_is_applied_to_dimensions_and_thumbnails(tmp_path):
    # Stored 600 × 400 with a red left edge; orientation 6 says "turn a quarter clockwise
    # to display": shown 400 × 600, the red edge along the top.
    stored = Image.new("RGB", (600, 400), BLUE)
    stored.paste(RED, (0, 0, 60, 400))
    path = save(stored, tmp_path / "turned.jpg", "JPEG", quality=95, exif=exif_with(gps=False, orientation=6))

    facts = _images.process_image(path)

    assert (facts.width, facts.height) == (400, 600)
    medium = decoded(facts.thumbnails[1]).convert("RGB")
    assert medium.size == (213, 320)
    top, bottom = medium.getpixel((106, 5)), medium.getpixel((106, 314))
    assert top[0] > 180 and top[2] < 100  # red
    assert bottom[2] > 180 and bottom[0] < 100  # blue


def test_an_animated_gif_is_thumbnailed_from_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (120, 80), colour) for colour in (RED, GREEN, BLUE)]
    path = tmp_path / "animated.gif"
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)

    facts = _images.process_image(path)

    assert facts.animated
    assert facts.dominant_color == "#dc143c"


# -- refusals -----------------------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header declares `width` × `height` pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("width", "height"),
    [(100_000, 100_000), (8_000, 6_000), (40_000, 100)],
    ids=["far-past-the-bound", "just-past-the-bound", "absurd-side"],
)
def test_a_decompression_bomb_is_refused_before_decoding(tmp_path, width, height):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_declaring(width, height))
    assert path.stat().st_size < 200

    with pytest.raises(ImageRefused, match="decompression bomb"):
        _images.process_image(path)


def test_bytes_that_are_not_an_image_are_refused(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_bytes(b"this is not an image at all" * 10)

    with pytest.raises(ImageRefused, match="not an image"):
        _images.process_image(path)


def test_a_truncated_image_is_refused(tmp_path):
    whole = save(photo(800, 600), tmp_path / "whole.png", "PNG").read_bytes()
    path = tmp_path / "truncated.png"
    path.write_bytes(whole[: len(whole) // 3])

    with pytest.raises(ImageRefused, match="cannot be decoded"):
        _images.process_image(path)


# -- location removed from what others download -----------------------------------------


@pytest.mark.parametrize("format", ["JPEG", "PNG", "WEBP"])
def test_the_variant_others_download_has_no_location_and_the_original_keeps_it(tmp_path, format):
    path = save(photo(320, 240), tmp_path / "trip", format, exif=exif_with(orientation=1))
    original = path.read_bytes()

    variant = _exif.remove_location(original)

    assert variant is not None
    kept = Image.open(io.BytesIO(variant)).getexif()
    assert kept.get_ifd(_exif.GPS_IFD_TAG) == {}
    assert _exif.GPS_IFD_TAG not in kept
    assert (kept[0x010F], kept[0x0110], kept[0x0112]) == ("Rapport Camera", "Model 7", 1)
    # Cut out in place: not re-encoded, the same length and the same pixels.
    assert len(variant) == len(original)
    with Image.open(io.BytesIO(variant)) as after, Image.open(io.BytesIO(original)) as before:
        assert after.tobytes() == before.tobytes()
    assert path.read_bytes() == original
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(_exif.GPS_IFD_TAG)[2] == GPS[2]


def test_a_jpeg_without_location_needs_no_variant(tmp_path):
    path = save(photo(320, 240), tmp_path / "plain.jpg", "JPEG", exif=exif_with(gps=False))

    assert _exif.remove_location(path.read_bytes()) is None


def test_an_xmp_packet_with_coordinates_is_removed_from_a_jpeg(tmp_path):
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="48,51.5N" '
        b'exif:GPSLongitude="2,17.6E"/></rdf:RDF></x:xmpmeta>'
    )
    path = save(photo(160, 120), tmp_path / "xmp.jpg", "JPEG", xmp=xmp)
    original = path.read_bytes()
    assert b"GPSLatitude" in original

    variant = _exif.remove_location(original)

    assert variant is not None
    assert b"GPSLatitude" not in variant
    with Image.open(io.BytesIO(variant)) as after, Image.open(io.BytesIO(original)) as before:
        assert after.tobytes() == before.tobytes()


def test_a_tiff_loses_its_gps_directory(tmp_path):
    path = save(photo(64, 48), tmp_path / "scan.tif", "TIFF", exif=exif_with().tobytes())

    variant = _exif.remove_location(path.read_bytes())

    assert variant is not None
    assert Image.open(io.BytesIO(variant)).getexif().get_ifd(_exif.GPS_IFD_TAG) == {}


def test_a_big_endian_gps_directory_and_its_values_are_erased_in_place():
    # Motorola byte order, as many cameras write it: IFD0 holds Make ("Cam") and the GPS
    # pointer; the GPS directory holds LatitudeRef "N" inline and Latitude (3 rationals,
    # 24 bytes) outside it.
    ifd0 = struct.pack(">H", 2)
    ifd0 += struct.pack(">HHI4s", 0x010F, 2, 4, b"Cam\x00")
    ifd0 += struct.pack(">HHII", _exif.GPS_IFD_TAG, 4, 1, 38)
    ifd0 += struct.pack(">I", 0)
    gps = struct.pack(">H", 2)
    gps += struct.pack(">HHI4s", 1, 2, 2, b"N\x00\x00\x00")
    gps += struct.pack(">HHII", 2, 5, 3, 68)
    gps += struct.pack(">I", 0)
    latitude = struct.pack(">6I", 48, 1, 51, 1, 30, 1)
    tiff = bytearray(b"MM\x00*" + struct.pack(">I", 8) + ifd0 + gps + latitude)
    assert len(tiff) == 68 + 24
    before = bytes(tiff)

    assert _exif.drop_gps(tiff)

    assert len(tiff) == len(before)
    assert struct.unpack_from(">H", tiff, 8)[0] == 1  # one entry left in IFD0: Make
    assert tiff[10:22] == before[10:22]
    assert tiff[22:38] == bytes(16)  # the pointer's slot and the old next-IFD offset, now padding
    assert tiff[38:] == bytes(len(tiff) - 38)  # the GPS directory and its values
    assert not _exif.drop_gps(tiff)


@pytest.mark.parametrize("content", [b"", b"\xff\xd8", b"\xff\xd8\xff\xe1\x00", b"II*\x00\xff\xff\xff\xff", b"GIF89a"])
def test_malformed_or_other_containers_are_left_alone(content):
    assert _exif.remove_location(content) is None


# -- audio, video and documents --------------------------------------------------------


def test_a_wav_file_reports_duration_rate_channels_and_codec(tmp_path):
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(22_050)
        out.writeframes(b"\x00\x01\x00\x01" * 22_050 * 3)

    facts = _metadata.read_media(path)

    assert facts is not None
    assert (facts.duration_seconds, facts.sample_rate, facts.audio_channels, facts.codec) == (3.0, 22_050, 2, "pcm")
    assert facts.bitrate == 22_050 * 2 * 16
    assert facts.extra["bits_per_sample"] == 16


def mp3_frames(count: int) -> bytes:
    """MPEG-1 Layer III frames at 128 kbit/s, 44.1 kHz, joint stereo, of silence."""
    header = b"\xff\xfb\x90\x44"
    return (header + bytes(417 - len(header))) * count


def test_an_mp3_file_reports_its_stream_and_tags(tmp_path):
    from mutagen.id3 import ID3, TIT2, TPE1

    path = tmp_path / "song.mp3"
    path.write_bytes(mp3_frames(383))  # 383 frames of 1152 samples: 10.0 s
    tags = ID3()
    tags.add(TIT2(encoding=3, text="Test tone"))
    tags.add(TPE1(encoding=3, text="Rapport"))
    tags.save(path)

    facts = _metadata.read_media(path)

    assert facts is not None
    assert (facts.bitrate, facts.sample_rate, facts.audio_channels, facts.codec) == (128_000, 44_100, 2, "mp3")
    assert facts.duration_seconds == pytest.approx(383 * 1152 / 44_100, abs=0.05)
    assert facts.extra["tags"] == {"title": "Test tone", "artist": "Rapport"}


def ogg_page(packet: bytes, *, sequence: int, granule: int, flags: int) -> bytes:
    segments = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, 0x5241_5050, sequence, 0, len(segments))
    page = header + bytes(segments) + packet
    # Ogg's CRC-32: polynomial 0x04C11DB7, not reflected, no final inversion.
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x8000_0000 else crc << 1) & 0xFFFF_FFFF
    return page[:22] + struct.pack("<I", crc) + page[26:]


def test_an_ogg_vorbis_file_reports_its_stream(tmp_path):
    identification = b"\x01vorbis" + struct.pack("<IBIiiiBB", 0, 1, 48_000, 0, 96_000, 0, 0xB8, 1)
    vendor = b"Rapport tests"
    comment = b"TITLE=Morning call"
    comments = b"\x03vorbis" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<II", 1, len(comment))
    comments += comment + b"\x01"
    path = tmp_path / "call.ogg"
    path.write_bytes(
        ogg_page(identification, sequence=0, granule=0, flags=0x02)
        + ogg_page(comments, sequence=1, granule=0, flags=0)
        + ogg_page(b"\x00" * 40, sequence=2, granule=48_000 * 4, flags=0x04)
    )

    facts = _metadata.read_media(path)

    assert facts is not None
    assert (facts.codec, facts.sample_rate, facts.audio_channels, facts.bitrate) == ("vorbis", 48_000, 1, 96_000)
    assert facts.duration_seconds == 4.0
    assert facts.extra["tags"] == {"title": "Morning call"}


def test_bytes_mutagen_does_not_know_have_no_media_facts(tmp_path):
    path = tmp_path / "notes.bin"
    path.write_bytes(b"plain words, no stream " * 20)

    assert _metadata.read_media(path) is None


def pdf_with_text(pages: list[str]) -> bytes:
    """A PDF written by hand, one line of Helvetica text per page."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{3 + 2 * index} 0 R" for index in range(len(pages)))
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font = 3 + 2 * len(pages)
    for index, line in enumerate(pages):
        content = f"BT /F1 12 Tf 20 100 Td ({line}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 200] /Contents {4 + 2 * index} 0 R "
            f"/Resources << /Font << /F1 {font} 0 R >> >> >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_a_pdf_reports_its_pages_and_words(tmp_path):
    path = tmp_path / "minutes.pdf"
    path.write_bytes(pdf_with_text(["Minutes of the meeting", "Action items follow", "End"]))

    facts = _metadata.read_pdf(path)

    assert (facts.page_count, facts.word_count) == (3, 8)


def test_a_pdf_made_with_pypdf_reports_its_pages(tmp_path):
    writer = PdfWriter()
    for _ in range(5):
        writer.add_blank_page(width=200, height=200)
    writer.add_metadata({"/Title": "Blank\x00 pages"})
    path = tmp_path / "blank.pdf"
    with path.open("wb") as out:
        writer.write(out)

    facts = _metadata.read_pdf(path)

    assert (facts.page_count, facts.word_count) == (5, 0)
    assert facts.extra == {"title": "Blank pages"}


def test_an_encrypted_pdf_is_counted_when_it_opens_without_a_password(tmp_path):
    writer = PdfWriter()
    for _ in range(2):
        writer.add_blank_page(width=200, height=200)
    writer.encrypt(user_password="", owner_password="owner secret", algorithm="AES-128")
    open_path = tmp_path / "restricted.pdf"
    with open_path.open("wb") as out:
        writer.write(out)
    locked = PdfWriter()
    locked.add_blank_page(width=200, height=200)
    locked.encrypt(user_password="reader secret", algorithm="AES-128")
    locked_path = tmp_path / "locked.pdf"
    with locked_path.open("wb") as out:
        locked.write(out)

    restricted, closed = _metadata.read_pdf(open_path), _metadata.read_pdf(locked_path)

    assert (restricted.page_count, restricted.extra["encrypted"]) == (2, True)
    assert (closed.page_count, closed.extra) == (None, {"encrypted": True})


def test_a_broken_pdf_is_unreadable(tmp_path):
    path = tmp_path / "broken.pdf"
    path.write_bytes(b"%PDF-1.7\nnothing else")

    with pytest.raises(_metadata.MetadataUnreadable):
        _metadata.read_pdf(path)
