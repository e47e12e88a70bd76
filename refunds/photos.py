"""Evidence photos (L-5.2) made safe to keep and to show: every upload is decoded under a size and
pixel limit, turned upright, stripped of its metadata (EXIF, GPS, ICC, comments), capped in
dimensions and re-encoded, with a small thumbnail beside it. Nothing a buyer uploaded is stored
or served as it came.

Every refusal is `InvalidInput` (a 400 on the API, a form error on pages) naming the file:
`file_too_large`, `not_an_image`, `unsupported_image`, `image_too_large`."""

import io
import os
from dataclasses import dataclass

from django.conf import settings
from PIL import Image, ImageOps

from core.errors import InvalidInput

# What Pillow may open at all: other formats are never tried, so their decoders never run.
PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}

# Other image formats, recognised by their first bytes only (BMP, TIFF, ICO, PSD, JPEG 2000,
# JPEG XL; HEIC and AVIF by their `ftyp` box) to say which formats to use instead.
OTHER_IMAGE_MAGIC = (
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"\x00\x00\x01\x00",
    b"8BPS",
    b"\x00\x00\x00\x0cjP  ",
    b"\xff\x0a",
)
JPEG_QUALITY = 85
MAX_NAME_LENGTH = 80
HIGH_BIT_DEPTH_MODES = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}


@dataclass(frozen=True)
class PhotoLimits:
    """The configured limits: bytes of an upload, pixels it may declare, the longest side of the
    stored photo and of its thumbnail (pixels)."""

    max_bytes: int
    max_pixels: int
    max_side: int
    thumbnail_side: int


def photo_limits() -> PhotoLimits:
    """The limits from settings (`LOJIX_PHOTO_*`), read at call time."""
    return PhotoLimits(
        max_bytes=settings.LOJIX_PHOTO_MAX_BYTES,
        max_pixels=settings.LOJIX_PHOTO_MAX_PIXELS,
        max_side=settings.LOJIX_PHOTO_MAX_SIDE,
        thumbnail_side=settings.LOJIX_PHOTO_THUMBNAIL_SIDE,
    )


@dataclass(frozen=True)
class Photo:
    """An upload decoded and re-encoded: `content` (at most `max_side` px on its longest side) and
    `thumbnail` are both `content_type` (JPEG, or PNG when the image has transparency), with no
    metadata; `width` and `height` are the stored photo's pixels; `name` is the upload's."""

    name: str
    content: bytes
    thumbnail: bytes
    content_type: str
    extension: str
    width: int
    height: int

    @property
    def size(self) -> int:
        """Bytes of the stored photo."""
        return len(self.content)


def photo_prepare(upload, *, limits: PhotoLimits | None = None) -> Photo:
    """Decode an upload (any file-like object with `read`, `seek`, optional `name` and `size`)
    and return it re-encoded with its thumbnail. Only the first frame of an animation is kept.

    Raises InvalidInput: `file_too_large` (over `max_bytes`), `image_too_large` (declares more
    than `max_pixels`, or Pillow's decompression-bomb guard fires), `unsupported_image` (not
    JPEG, PNG, WebP or GIF), `not_an_image` (anything else Pillow cannot decode: wrong magic,
    truncated, corrupt, zero-size). Each message names the file."""
    limits = limits or photo_limits()
    name = _display_name(upload)
    data = _read_capped(upload, name, limits)
    try:
        image = _open(data, name, limits)
        with image:
            content, thumbnail, extension, size = _reencode(image, limits)
    except InvalidInput:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning, MemoryError) as error:
        raise _too_large(name, limits) from error
    except Exception as error:
        # Pillow's decoders answer hostile input with many exception types (OSError,
        # SyntaxError, ValueError, struct.error, EOFError, IndexError, ...): all mean "unreadable".
        raise InvalidInput("not_an_image", f"{name} is not an image we can read.") from error
    content_type = "image/png" if extension == "png" else "image/jpeg"
    return Photo(name, content, thumbnail, content_type, extension, size[0], size[1])


def _display_name(upload) -> str:
    name = os.path.basename(str(getattr(upload, "name", "") or "")) or "The photo"
    return name if len(name) <= MAX_NAME_LENGTH else name[: MAX_NAME_LENGTH - 1] + "…"


def _read_capped(upload, name: str, limits: PhotoLimits) -> bytes:
    megabytes = limits.max_bytes // (1024 * 1024)
    too_large = InvalidInput("file_too_large", f"{name} is larger than {megabytes} MB.")
    if (getattr(upload, "size", 0) or 0) > limits.max_bytes:
        raise too_large
    upload.seek(0)
    data = upload.read(limits.max_bytes + 1)
    upload.seek(0)
    if len(data) > limits.max_bytes:
        raise too_large
    if not data:
        raise InvalidInput("not_an_image", f"{name} is empty.")
    return data


def _too_large(name: str, limits: PhotoLimits) -> InvalidInput:
    megapixels = limits.max_pixels // 1_000_000
    return InvalidInput(
        "image_too_large", f"{name} has more than {megapixels} megapixels; send a smaller photo."
    )


def _open(data: bytes, name: str, limits: PhotoLimits) -> Image.Image:
    """Read the header only and check what it declares before anything is decoded."""
    try:
        image = Image.open(io.BytesIO(data), formats=list(PHOTO_FORMATS))
    except Image.UnidentifiedImageError as error:
        if data.startswith(OTHER_IMAGE_MAGIC) or data[4:8] == b"ftyp":
            raise InvalidInput(
                "unsupported_image", f"{name}: use JPEG, PNG, WebP or GIF."
            ) from error
        raise InvalidInput("not_an_image", f"{name} is not an image we can read.") from error
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise InvalidInput("not_an_image", f"{name} has no pixels.")
    if width * height > limits.max_pixels:
        image.close()
        raise _too_large(name, limits)
    return image


def _reencode(image: Image.Image, limits: PhotoLimits) -> tuple[bytes, bytes, str, tuple]:
    if image.format == "JPEG":
        # Decode a large JPEG at 1/2, 1/4 or 1/8 scale straight away when that still covers
        # the cap: a fraction of the memory and time.
        image.draft("RGB", (limits.max_side, limits.max_side))
    image.load()
    upright = ImageOps.exif_transpose(image) or image
    picture = _normalised(upright)
    picture = _fitted(picture, limits.max_side)
    thumbnail = _fitted(picture, limits.thumbnail_side)
    extension = "png" if picture.mode == "RGBA" else "jpg"
    return _encoded(picture, extension), _encoded(thumbnail, extension), extension, picture.size


def _normalised(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when some pixel is not opaque; 16-bit greys scaled down to 8 bits."""
    if image.mode in HIGH_BIT_DEPTH_MODES:
        image = image.convert("I").point(lambda value: value * (1 / 256)).convert("L")
    has_alpha = image.mode in ALPHA_MODES or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        if rgba.getchannel("A").getextrema()[0] < 255:
            return rgba
        return rgba.convert("RGB")
    return image.convert("RGB")


def _fitted(image: Image.Image, side: int) -> Image.Image:
    width, height = image.size
    longest = max(width, height)
    if longest <= side:
        return image
    size = (max(1, round(width * side / longest)), max(1, round(height * side / longest)))
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _encoded(image: Image.Image, extension: str) -> bytes:
    """Pixels only: a fresh image carries no EXIF, ICC profile, text chunks or comments."""
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    buffer = io.BytesIO()
    if extension == "png":
        clean.save(buffer, "PNG")
    else:
        clean.save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()
