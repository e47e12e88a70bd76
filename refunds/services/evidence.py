"""Photo evidence on refund requests (L-5.2): counted, made safe by refunds.photos (decoded,
stripped, capped, re-encoded, thumbnailed) and stored as re-encoded, never as uploaded."""

import uuid

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError, InvalidInput
from core.roles import User
from disputes.guards import buyer_must_not_be_suspended
from refunds.lock_objects import refund_request_for_update
from refunds.models import OPEN_STATUSES, RefundEvidence
from refunds.photos import Photo, photo_prepare

MAX_PHOTOS = 5


def photos_check_count(*, adding: int, already: int) -> None:
    """Refuse more than MAX_PHOTOS on one request (L-5.2) with InvalidInput `too_many_photos`
    (400). Takes no lock; the caller holds the request's row lock when photos already exist."""
    if already + adding > MAX_PHOTOS:
        raise InvalidInput("too_many_photos", f"A request can have at most {MAX_PHOTOS} photos.")


def validated_photos(photos, *, already: int) -> list[Photo]:
    """The uploads prepared for storing (refunds.photos.photo_prepare); an item that is already
    a prepared `Photo` (a page's form prepared it) is kept as it is. Counted before anything is
    decoded; takes no lock (L-5.2). Raises InvalidInput (400): `too_many_photos` and
    photo_prepare's `file_too_large`, `image_too_large`, `unsupported_image`, `not_an_image`;
    nothing is stored."""
    photos_check_count(adding=len(photos), already=already)
    return [photo if isinstance(photo, Photo) else photo_prepare(photo) for photo in photos]


def store_photos(request, photos: list[Photo], *, actor: User, now) -> None:
    """Store prepared photos and their thumbnails on the request as evidence (L-5.2), under
    generated names; type, size and pixels are those of what is stored. Call inside the
    request's transaction, holding its row lock (or the order's, for a new request). Raises no
    domain error: the photos were validated by `validated_photos`."""
    for photo in photos:
        stem = uuid.uuid4().hex
        RefundEvidence.objects.create(
            request=request,
            file=ContentFile(photo.content, name=f"{stem}.{photo.extension}"),
            thumbnail=ContentFile(photo.thumbnail, name=f"{stem}-thumb.{photo.extension}"),
            content_type=photo.content_type,
            size=photo.size,
            width=photo.width,
            height=photo.height,
            uploaded_by=actor,
            created_at=now,
        )


@transaction.atomic
def refund_request_add_evidence(*, request_id: int, actor: User, photos) -> list[RefundEvidence]:
    """The buyer adds photos to an undecided request (L-5.2). Takes the request's row lock.
    Raises DomainError `not_found` (404, also for another buyer's request), `request_closed`
    (409), InvalidInput `file_required` and validated_photos' codes (400); a refusal stores
    nothing."""
    request = refund_request_for_update(request_id, buyer=actor)
    buyer_must_not_be_suspended(actor)
    if request.status not in OPEN_STATUSES:
        raise DomainError("request_closed", "This request has been decided.")
    if not photos:
        raise InvalidInput("file_required", "Choose a photo to upload.")
    prepared = validated_photos(photos, already=request.evidence.count())
    now = timezone.now()
    store_photos(request, prepared, actor=actor, now=now)
    return list(request.evidence.order_by("-pk")[: len(photos)])
