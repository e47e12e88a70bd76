"""The photo module (refunds.photos) on its own, no database: hostile images are refused with a
named reason, accepted ones come back upright, capped, thumbnailed and without metadata; fuzzed
with random bytes and with mutated valid PNG, JPEG, GIF and WebP files it either accepts (and the
result decodes) or refuses with the domain's 400, never anything else."""

import io
import time
import warnings
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from core.errors import InvalidInput
from refunds.photos import PhotoLimits, photo_prepare
from tests.refunds.photo_samples import (
    GPS_IFD,
    encoded,
    gif_many_frames,
    jpeg_turned,
    jpeg_with_gps,
    noise,
    png_bomb,
    png_bytes,
    upload,
    valid_samples,
)

LIMITS = PhotoLimits(max_bytes=8 * 1024 * 1024, max_pixels=50_000_000, max_side=2048,
                     thumbnail_side=320)  # fmt: skip
REFUSALS = {"file_too_large", "not_an_image", "unsupported_image", "image_too_large"}
SAMPLES = valid_samples()


def refused(data: bytes, name: str = "photo.png", limits: PhotoLimits = LIMITS) -> InvalidInput:
    with pytest.raises(InvalidInput) as refusal:
        photo_prepare(upload(name, data), limits=limits)
    assert refusal.value.kind == "invalid"
    assert name in refusal.value.detail
    return refusal.value


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# -- hostile files --------------------------------------------------------------------------


def test_a_few_dozen_bytes_declaring_400_megapixels_are_refused_before_decoding():
    bomb = png_bomb()
    assert len(bomb) < 70

    error = refused(bomb, "bomb.png")

    assert (error.code, error.detail) == (
        "image_too_large",
        "bomb.png has more than 50 megapixels; send a smaller photo.",
    )


def test_pillows_own_bomb_guard_is_a_400_too_when_the_configured_limit_is_higher():
    generous = PhotoLimits(10**12, 10**12, 2048, 320)

    assert refused(png_bomb(), "bomb.png", generous).code == "image_too_large"


def test_pillows_bomb_warning_raised_as_an_error_is_a_400():
    generous = PhotoLimits(10**12, 10**12, 2048, 320)
    # 100 megapixels: over Image.MAX_IMAGE_PIXELS (a warning), under twice it (an error).
    warned = png_bytes(10000, 10000, b"")

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        assert refused(warned, "warned.png", generous).code == "image_too_large"


@pytest.mark.parametrize(
    ("case", "name", "data", "code", "detail"),
    [
        ("empty", "empty.jpg", b"", "not_an_image", "empty.jpg is empty."),
        ("text named png", "spill.png", b"this is not a picture", "not_an_image",
         "spill.png is not an image we can read."),
        ("wrong magic", "magic.png", b"\x88" + SAMPLES["png"][1:], "not_an_image",
         "magic.png is not an image we can read."),
        ("truncated png", "half.png", SAMPLES["png"][: len(SAMPLES["png"]) // 2], "not_an_image",
         "half.png is not an image we can read."),
        ("truncated jpeg", "half.jpg", SAMPLES["jpeg"][: len(SAMPLES["jpeg"]) // 2],
         "not_an_image", "half.jpg is not an image we can read."),
        ("zero-size png", "zero.png", png_bytes(0, 0, b""), "not_an_image",
         "zero.png is not an image we can read."),
        ("zero-height png", "flat.png", png_bytes(5, 0, b""), "not_an_image",
         "flat.png is not an image we can read."),
        ("zero-size gif screen", "zero.gif", gif_many_frames(1, (0, 0), (0, 0)), "not_an_image",
         "zero.gif is not an image we can read."),
        ("bmp", "photo.bmp", encoded(Image.new("RGB", (8, 8)), "BMP"), "unsupported_image",
         "photo.bmp: use JPEG, PNG, WebP or GIF."),
        ("tiff", "photo.tif", encoded(Image.new("RGB", (8, 8)), "TIFF"), "unsupported_image",
         "photo.tif: use JPEG, PNG, WebP or GIF."),
        ("svg", "photo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "not_an_image",
         "photo.svg is not an image we can read."),
    ],
)  # fmt: skip
def test_hostile_and_broken_files_are_refused_by_name(case, name, data, code, detail):
    error = refused(data, name)

    assert (error.code, error.detail) == (code, detail)


def test_a_file_over_the_byte_limit_is_refused_without_reading_more_than_the_limit():
    small = PhotoLimits(max_bytes=1024 * 1024, max_pixels=50_000_000, max_side=2048,
                        thumbnail_side=320)  # fmt: skip
    big = encoded(noise((640, 640)), "PNG", compress_level=0)

    error = refused(big, "big.png", small)

    assert (error.code, error.detail) == ("file_too_large", "big.png is larger than 1 MB.")


def test_an_animated_gif_bomb_keeps_its_first_frame_only_and_decodes_no_other():
    bomb = gif_many_frames(5000)
    assert Image.open(io.BytesIO(bomb)).n_frames == 5000

    started = time.monotonic()
    photo = photo_prepare(upload("bomb.gif", bomb), limits=LIMITS)
    elapsed = time.monotonic() - started

    assert (photo.content_type, photo.width, photo.height) == ("image/jpeg", 2000, 2000)
    stored = decoded(photo.content)
    assert (stored.format, getattr(stored, "n_frames", 1)) == ("JPEG", 1)
    # Every frame composited would be 5000 screens of 4 megapixels: minutes, not this.
    assert elapsed < 10


def test_a_long_name_is_shortened_in_the_message():
    with pytest.raises(InvalidInput) as refusal:
        photo_prepare(upload("x" * 300 + ".png", b"nope"), limits=LIMITS)

    assert refusal.value.detail == "x" * 79 + "… is not an image we can read."


# -- what is kept ---------------------------------------------------------------------------


def test_a_jpeg_with_gps_comes_back_without_exif_gps_or_icc():
    original = Image.open(io.BytesIO(jpeg_with_gps()))
    assert original.getexif().get_ifd(GPS_IFD)[1] == "N"
    assert "icc_profile" in original.info

    photo = photo_prepare(upload("where.jpg", jpeg_with_gps()), limits=LIMITS)

    for data in (photo.content, photo.thumbnail):
        stored = decoded(data)
        assert stored.format == "JPEG"
        assert dict(stored.getexif()) == {}
        assert stored.getexif().get_ifd(GPS_IFD) == {}
        assert {"exif", "icc_profile", "comment"}.isdisjoint(stored.info)
        assert b"PhoneMaker" not in data


def test_a_5000_by_4000_photo_is_stored_at_the_cap_with_a_small_thumbnail():
    big = encoded(noise((500, 400)).resize((5000, 4000)), "JPEG", quality=90)

    photo = photo_prepare(upload("big.jpg", big), limits=LIMITS)

    assert (photo.width, photo.height, photo.content_type) == (2048, 1638, "image/jpeg")
    assert decoded(photo.content).size == (2048, 1638)
    assert decoded(photo.thumbnail).size == (320, 256)
    assert photo.size == len(photo.content)
    assert len(photo.thumbnail) < 64 * 1024


def test_a_tall_png_is_capped_on_its_longest_side():
    tall = encoded(noise((30, 3000)), "PNG")

    photo = photo_prepare(upload("tall.png", tall), limits=LIMITS)

    assert (photo.width, photo.height) == (20, 2048)
    assert decoded(photo.thumbnail).size == (3, 320)


def test_a_sliver_keeps_at_least_one_pixel():
    sliver = encoded(noise((4000, 1)), "PNG")

    photo = photo_prepare(upload("sliver.png", sliver), limits=LIMITS)

    assert (photo.width, photo.height) == (2048, 1)
    assert decoded(photo.thumbnail).size == (320, 1)


def test_exif_orientation_is_applied_before_the_exif_goes():
    photo = photo_prepare(upload("turned.jpg", jpeg_turned(6)), limits=LIMITS)

    stored = decoded(photo.content)
    assert stored.size == (20, 40) == (photo.width, photo.height)
    assert dict(stored.getexif()) == {}


@pytest.mark.parametrize(
    ("case", "sample", "content_type", "mode"),
    [
        ("transparent png stays png", "png_alpha", "image/png", "RGBA"),
        ("transparent lossless webp becomes png", "webp_lossless", "image/png", "RGBA"),
        ("opaque png becomes jpeg", "png", "image/jpeg", "RGB"),
        ("16-bit grey png becomes jpeg", "png_grey16", "image/jpeg", "RGB"),
        ("gif becomes jpeg", "gif", "image/jpeg", "RGB"),
        ("webp becomes jpeg", "webp", "image/jpeg", "RGB"),
    ],
)
def test_photos_are_jpeg_and_transparent_images_png(case, sample, content_type, mode):
    photo = photo_prepare(upload(f"{sample}.img", SAMPLES[sample]), limits=LIMITS)

    assert photo.content_type == content_type
    assert decoded(photo.content).mode == decoded(photo.thumbnail).mode == mode


def test_an_opaque_alpha_channel_is_dropped_and_the_photo_is_a_jpeg():
    opaque = encoded(Image.new("RGBA", (8, 8), (10, 20, 30, 255)), "PNG")

    photo = photo_prepare(upload("opaque.png", opaque), limits=LIMITS)

    assert photo.content_type == "image/jpeg"


def test_a_16_bit_grey_is_scaled_down_not_clipped_to_white():
    photo = photo_prepare(upload("grey.png", SAMPLES["png_grey16"]), limits=LIMITS)

    assert decoded(photo.content).getpixel((4, 4)) == pytest.approx((156, 156, 156), abs=2)


# -- fuzzing --------------------------------------------------------------------------------

FUZZ_LIMITS = PhotoLimits(max_bytes=256 * 1024, max_pixels=4_000_000, max_side=256,
                          thumbnail_side=64)  # fmt: skip
MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"RIFF\x00\x01\x00\x00WEBPVP8 "]
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def accepted_or_refused(data: bytes) -> None:
    """The property: a Photo that decodes within the limits, or the domain's 400 naming it."""
    try:
        photo = photo_prepare(upload("fuzz.img", data), limits=FUZZ_LIMITS)
    except InvalidInput as error:
        refusal = error
    else:
        refusal = None
    if refusal is not None:
        assert (refusal.code in REFUSALS, refusal.kind) == (True, "invalid")
        assert "fuzz.img" in refusal.detail
        return
    stored, thumbnail = decoded(photo.content), decoded(photo.thumbnail)
    assert stored.format == thumbnail.format == ("PNG" if photo.extension == "png" else "JPEG")
    assert stored.size == (photo.width, photo.height)
    assert 1 <= max(stored.size) <= FUZZ_LIMITS.max_side
    assert 1 <= max(thumbnail.size) <= FUZZ_LIMITS.thumbnail_side
    assert dict(stored.getexif()) == {}


@FUZZ
@given(data=st.binary(max_size=4096))
def test_fuzz_random_bytes(data):
    accepted_or_refused(data)


@FUZZ
@given(
    magic=st.sampled_from(MAGIC),
    rest=st.binary(max_size=64),
)
def test_fuzz_right_magic_then_garbage(magic, rest):
    accepted_or_refused(magic + rest)


@st.composite
def mutated(draw) -> bytes:
    """A valid sample with bytes overwritten, inserted or cut, or the file truncated."""
    data = bytearray(SAMPLES[draw(st.sampled_from(sorted(SAMPLES)))])
    for _ in range(draw(st.integers(1, 8))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "byte", "insert", "cut"]))
        if action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "byte":
            data[position] = draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF]))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[position : position + draw(st.integers(1, 16))]
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


@FUZZ
@given(data=mutated())
def test_fuzz_mutated_valid_images(data):
    accepted_or_refused(data)


@FUZZ
@given(
    width=st.integers(0, 2**31 - 1),
    height=st.integers(0, 2**31 - 1),
    depth=st.sampled_from([1, 2, 4, 8, 16, 3, 0, 255]),
    colour=st.sampled_from([0, 2, 3, 4, 6, 1, 7]),
    pixels=st.binary(max_size=512),
)
def test_fuzz_png_headers_with_valid_checksums(width, height, depth, colour, pixels):
    accepted_or_refused(png_bytes(width, height, pixels, depth=depth, colour=colour))
    accepted_or_refused(png_bytes(width, height, zlib.compress(pixels), depth=depth, colour=colour))
