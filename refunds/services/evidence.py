"""Photo evidence on refund requests (L-5.2): counted, made safe by refunds.photos (decoded,
stripped, capped, re-encoded, thumbnailed) and stored as re-encoded, never as uploaded. Photos
chosen on the report-a-problem form are held for the buyer and order (HeldPhoto) until the
request is sent, so a preview or a refused form never asks for them again."""

import datetime as dt
import uuid

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from core.errors import DomainError, InvalidInput
from core.roles import User
from disputes.guards import buyer_must_not_be_suspended
from orders.lock_objects import order_for_update
from refunds.lock_objects import refund_request_for_update
from refunds.models import OPEN_STATUSES, HeldPhoto, RefundEvidence
from refunds.photos import Photo, photo_prepare

MAX_PHOTOS = 5
# A held photo not sent with a request within this time is deleted (purge_held_photos).
HELD_PHOTO_MAX_AGE = dt.timedelta(hours=24)


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


def _photo_files(photo: Photo) -> dict:
    """The stored photo, its thumbnail and what is known of them, under a generated name."""
    stem = uuid.uuid4().hex
    return {
        "file": ContentFile(photo.content, name=f"{stem}.{photo.extension}"),
        "thumbnail": ContentFile(photo.thumbnail, name=f"{stem}-thumb.{photo.extension}"),
        "content_type": photo.content_type,
        "size": photo.size,
        "width": photo.width,
        "height": photo.height,
    }


def store_photos(request, photos: list[Photo], *, actor: User, now) -> None:
    """Store prepared photos and their thumbnails on the request as evidence (L-5.2), under
    generated names; type, size and pixels are those of what is stored. Call inside the
    request's transaction, holding its row lock (or the order's, for a new request). Raises no
    domain error: the photos were validated by `validated_photos`."""
    for photo in photos:
        RefundEvidence.objects.create(
            request=request, uploaded_by=actor, created_at=now, **_photo_files(photo)
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


# -- photos held for a request not sent yet (the report-a-problem form) ----------------------


@transaction.atomic
def refund_photos_hold(
    *, order_id: int, actor: User, photos: list[Photo], keep_ids=()
) -> list[HeldPhoto]:
    """Keep the buyer's newly chosen photos for a request on this order not sent yet (L-5.2),
    beside the held ones named by `keep_ids`; returns those kept and the new ones, oldest
    first. Takes the order's row lock. Raises DomainError `not_found` (404, another buyer's
    order); InvalidInput (400) `unknown_photo` (an id that is not this buyer's held photo for
    this order), validated_photos' codes, `too_many_photos` counting the kept ones; a refusal
    stores nothing."""
    order = order_for_update(order_id, buyer=actor)
    buyer_must_not_be_suspended(actor)
    kept = held_photos_owned(order=order, actor=actor, ids=keep_ids)
    prepared = validated_photos(photos, already=len(kept))
    now = timezone.now()
    new = [
        HeldPhoto.objects.create(order=order, uploaded_by=actor, created_at=now, **_photo_files(p))
        for p in prepared
    ]
    return kept + new


def held_photos_owned(*, order, actor: User, ids) -> list[HeldPhoto]:
    """The buyer's held photos for this order named by `ids` (each once), oldest first, locked
    until the transaction ends. Call inside a transaction holding the order's or the request's
    row lock. Raises InvalidInput `unknown_photo` (400) when an id is not
    one of them: another buyer's, another order's, already sent or purged."""
    wanted = {int(i) for i in ids}
    if not wanted:
        return []
    held = list(
        HeldPhoto.objects.select_for_update().filter(pk__in=wanted, order=order, uploaded_by=actor)
    )
    if len(held) != len(wanted):
        raise InvalidInput("unknown_photo", "A photo you chose is no longer kept; choose it again.")
    photos_check_count(adding=len(held), already=0)
    return sorted(held, key=lambda photo: (photo.created_at, photo.pk))


def held_photos_attach(held: list[HeldPhoto], *, order, actor: User, evidence, **owner) -> None:
    """Make the held photos evidence of `owner` (`request=` a refund request, or `escalation=`)
    as rows of `evidence`, a `core.models.PhotoEvidence` model (the same stored files), and drop
    every other photo the buyer held for this order. Call inside the owner's transaction,
    holding the order's or the owner's row lock; raises no domain error (held_photos_owned
    checked them)."""
    evidence.objects.bulk_create(
        evidence(
            **owner,
            file=photo.file.name,
            thumbnail=photo.thumbnail.name,
            content_type=photo.content_type,
            size=photo.size,
            width=photo.width,
            height=photo.height,
            uploaded_by=actor,
            created_at=photo.created_at,
        )
        for photo in held
    )
    held_photos_release(held, order=order, actor=actor)


def held_photos_release(held: list[HeldPhoto], *, order, actor: User) -> None:
    """The held photos were attached elsewhere (same files): delete their rows, and every other
    photo the buyer held for this order with its files. Call in the transaction that attached
    them; raises no domain error."""
    attached = [photo.pk for photo in held]
    HeldPhoto.objects.filter(pk__in=attached).delete()
    others = HeldPhoto.objects.select_for_update().filter(order=order, uploaded_by=actor)
    _held_photos_delete(list(others.exclude(pk__in=attached)))


def held_photos_purge(*, now: dt.datetime, limit: int) -> int:
    """Delete up to `limit` held photos older than HELD_PHOTO_MAX_AGE, with their files, oldest
    first; returns how many. Safe to run twice at once, and beside a request being sent: rows
    another transaction holds are skipped for the next run."""
    with transaction.atomic():
        photos = list(
            HeldPhoto.objects.select_for_update(skip_locked=True)
            .filter(created_at__lt=now - HELD_PHOTO_MAX_AGE)
            .order_by("created_at", "pk")[:limit]
        )
        _held_photos_delete(photos)
    return len(photos)


def _held_photos_delete(photos: list[HeldPhoto]) -> None:
    """Delete the locked rows, then their files once the deletion commits (a rollback keeps
    both)."""
    if not photos:
        return
    names = [name for photo in photos for name in (photo.file.name, photo.thumbnail.name) if name]
    HeldPhoto.objects.filter(pk__in=[photo.pk for photo in photos]).delete()
    storage = HeldPhoto._meta.get_field("file").storage
    transaction.on_commit(lambda: [storage.delete(name) for name in names])
