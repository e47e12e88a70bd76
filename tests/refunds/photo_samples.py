"""Hostile and ordinary images for the photo tests, built byte by byte or with Pillow."""

import io
import random
import struct
import zlib

from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

GPS_IFD = 0x8825
ORIENTATION = 0x0112


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def png_bytes(width: int, height: int, idat: bytes, *, depth=8, colour=0, end=True) -> bytes:
    """A PNG with a valid signature, IHDR (checksummed) and one IDAT, as declared."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    body = png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat)
    return b"\x89PNG\r\n\x1a\n" + body + (png_chunk(b"IEND", b"") if end else b"")


def png_bomb() -> bytes:
    """A few dozen bytes declaring 20000 x 20000 pixels (400 megapixels), with a tiny IDAT."""
    return png_bytes(20000, 20000, zlib.compress(b"\0"), end=False)


def encoded(image: Image.Image, image_format: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **params)
    return buffer.getvalue()


def noise(size: tuple[int, int], mode: str = "RGB", seed: int = 7) -> Image.Image:
    """Random pixels: a photo that does not compress to nothing."""
    rng = random.Random(seed)
    channels = len(mode)
    return Image.frombytes(mode, size, rng.randbytes(size[0] * size[1] * channels))


def jpeg_with_gps() -> bytes:
    """A buyer's photo with their position in its EXIF (and a camera make) and an ICC profile."""
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    gps = exif.get_ifd(GPS_IFD)
    gps.update({1: "N", 2: (52.0, 22.0, 12.0), 3: "E", 4: (4.0, 53.0, 28.0)})
    return encoded(noise((64, 48)), "JPEG", exif=exif.tobytes(), icc_profile=b"\0" * 128)


def jpeg_turned(orientation: int = 6) -> bytes:
    """A 40 x 20 photo whose EXIF says to turn it (6: 90 degrees clockwise)."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return encoded(noise((40, 20)), "JPEG", exif=exif.tobytes())


def gif_many_frames(
    frames: int, screen: tuple[int, int] = (2000, 2000), frame_size: tuple[int, int] = (1, 1)
) -> bytes:
    """An animated GIF: a large screen and `frames` one-pixel frames, each a few bytes, so
    decoding every frame would composite `frames` full screens."""
    head = b"GIF89a" + struct.pack("<HHBBB", *screen, 0x80, 0, 0) + b"\x00\x00\x00\xff\x00\x00"
    # Graphic control (no disposal, 0.1 s), a 1 x 1 image at the origin, LZW min code size 2,
    # codes clear(4), 0, end(5) in 3 bits each, LSB first: 0x44 0x01.
    frame = (
        b"\x21\xf9\x04\x00\x0a\x00\x00\x00" + b"\x2c" + struct.pack("<HHHHB", 0, 0, *frame_size, 0)
    )
    frame += b"\x02\x02\x44\x01\x00"
    return head + frame * frames + b"\x3b"


def valid_samples() -> dict[str, bytes]:
    """Small valid images of every accepted format, the seeds for mutation fuzzing."""
    small = noise((16, 12))
    return {
        "png": encoded(small, "PNG"),
        "png_alpha": encoded(noise((16, 12), "RGBA"), "PNG"),
        "png_grey16": encoded(Image.new("I;16", (8, 8), 40000), "PNG"),
        "jpeg": encoded(small, "JPEG"),
        "jpeg_exif": jpeg_turned(),
        "gif": encoded(small.convert("P"), "GIF"),
        "gif_animated": encoded(
            small.convert("P"), "GIF", save_all=True, append_images=[Image.new("P", (16, 12))]
        ),
        "webp": encoded(small, "WEBP"),
        "webp_lossless": encoded(noise((16, 12), "RGBA"), "WEBP", lossless=True),
    }
