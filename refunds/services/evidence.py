"""Photo evidence on refund requests (L-5.2): validated by decoding, stored, listed."""

from django.db import transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from core.errors import DomainError, InvalidInput
from refunds.lock_objects import refund_request_for_update
from refunds.models import OPEN_STATUSES, RefundEvidence

MAX_PHOTOS = 5


MAX_PHOTO_BYTES = 8 * 1024 * 1024


PHOTO_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif"}


def validate_photo(upload) -> str:
    """Decode an upload with Pillow: it must be a real image of an accepted format and size.
    Returns its content type; raises InvalidInput otherwise (nothing is stored)."""
    if upload.size > MAX_PHOTO_BYTES:
        raise InvalidInput(
            "file_too_large", f"{upload.name} is larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB."
        )
    try:
        upload.seek(0)
        with Image.open(upload) as image:
            image.verify()
            image_format = image.format
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        raise InvalidInput("not_an_image", f"{upload.name} is not an image we can read.") from error
    finally:
        upload.seek(0)
    if image_format not in PHOTO_FORMATS:
        raise InvalidInput("unsupported_image", f"{upload.name}: use JPEG, PNG, WebP or GIF.")
    return PHOTO_FORMATS[image_format]


def validated_photos(photos, *, already: int) -> list[str]:
    if already + len(photos) > MAX_PHOTOS:
        raise InvalidInput("too_many_photos", f"A request can have at most {MAX_PHOTOS} photos.")
    return [validate_photo(photo) for photo in photos]


def store_photos(request, photos, content_types, *, actor, now) -> None:
    for photo, content_type in zip(photos, content_types, strict=True):
        RefundEvidence.objects.create(
            request=request,
            file=photo,
            content_type=content_type,
            size=photo.size,
            uploaded_by=actor,
            created_at=now,
        )


@transaction.atomic
def refund_request_add_evidence(*, request_id: int, actor, photos) -> list[RefundEvidence]:
    """The buyer adds photos to an undecided request (L-5.2)."""
    request = refund_request_for_update(request_id, buyer=actor)
    if request.status not in OPEN_STATUSES:
        raise DomainError("request_closed", "This request has been decided.")
    if not photos:
        raise InvalidInput("file_required", "Choose a photo to upload.")
    content_types = validated_photos(photos, already=request.evidence.count())
    now = timezone.now()
    store_photos(request, photos, content_types, actor=actor, now=now)
    return list(request.evidence.order_by("-pk")[: len(photos)])
