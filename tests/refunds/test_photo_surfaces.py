"""Hostile photos on every surface that takes one: the API's evidence upload, claim and reply,
the report-a-problem page (submit and preview) and the reply page answer 400 naming the reason
and store nothing; what is served has no EXIF, is capped, and has a small thumbnail that admin,
the portal and the request page show; photos stored before this are re-encoded by a migration."""

import importlib
import io
import json

import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.urls import reverse
from PIL import Image

from refunds.models import RefundEvidence, RefundMessage, RefundRequest, RefundRequestEvent
from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order
from tests.refunds.photo_samples import (
    GPS_IFD,
    encoded,
    jpeg_with_gps,
    noise,
    png_bomb,
    upload,
)

pytestmark = pytest.mark.django_db

BOMB_DETAIL = "bomb.png has more than 50 megapixels; send a smaller photo."


@pytest.fixture
def delivered(now, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1})
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def tiramisu(order) -> int:
    return order.items.get(name="Tiramisu").pk


def missing_tiramisu(order, buyer, photos=()) -> RefundRequest:
    return refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(tiramisu(order), 1)],
        photos=list(photos),
    )


def bomb():
    return upload("bomb.png", png_bomb())


def small_photo(name="bag.png"):
    return upload(name, encoded(noise((8, 8)), "PNG"))


def stored() -> tuple[int, int, int, int]:
    return (
        RefundRequest.objects.count(),
        RefundEvidence.objects.count(),
        RefundMessage.objects.count(),
        RefundRequestEvent.objects.count(),
    )


def served(client, evidence, size="") -> bytes:
    url = reverse("refunds:evidence", args=[evidence.pk]) + (f"?size={size}" if size else "")
    response = client.get(url)
    assert response.status_code == 200
    return b"".join(response.streaming_content)


# -- the decompression bomb on every surface ------------------------------------------------


def test_api_evidence_upload_of_a_bomb_is_a_400_and_stores_nothing(api_as, buyer, delivered):
    request = missing_tiramisu(delivered, buyer)
    before = stored()

    response = api_as(buyer).post(
        f"/api/refund-requests/{request.pk}/evidence/", {"file": bomb()}, format="multipart"
    )

    assert response.status_code == 400
    assert response.json() == {"code": "image_too_large", "detail": BOMB_DETAIL}
    assert stored() == before


def test_api_claim_with_a_bomb_is_a_400_and_stores_nothing(api_as, buyer, delivered):
    response = api_as(buyer).post(
        "/api/refund-requests/",
        {
            "order": delivered.pk,
            "reason": "missing_items",
            "items": json.dumps([{"order_item": tiramisu(delivered), "quantity": 1}]),
            "photos": [small_photo(), bomb()],
        },
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json() == {"code": "image_too_large", "detail": BOMB_DETAIL}
    assert stored() == (0, 0, 0, 0)


def test_api_reply_with_a_bomb_is_a_400_and_stores_nothing(api_as, buyer, delivered):
    request = missing_tiramisu(delivered, buyer)
    before = stored()

    response = api_as(buyer).post(
        f"/api/refund-requests/{request.pk}/reply/",
        {"body": "Here it is", "photos": [bomb()]},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["code"] == "image_too_large"
    assert stored() == before


@pytest.mark.parametrize("action", ["submit", "preview"])
def test_the_report_a_problem_page_refuses_a_bomb_as_a_form_error(client, buyer, delivered, action):
    client.force_login(buyer)
    data = {f"qty_{item.pk}": "0" for item in delivered.items.all()}
    data |= {"reason": "missing_items", "description": "", "preferred_method": "original"}
    data |= {f"qty_{tiramisu(delivered)}": "1", "action": action, "photos": [bomb()]}

    response = client.post(reverse("refunds:new", args=[delivered.pk]), data)

    assert response.status_code == 400
    assert response.context["form"].errors["photos"] == [BOMB_DETAIL]
    assert response.context["preview"] is None
    assert f"Photos: {BOMB_DETAIL}" in response.content.decode()
    assert stored() == (0, 0, 0, 0)


def test_the_reply_page_refuses_a_bomb_as_a_form_error(client, buyer, delivered):
    request = missing_tiramisu(delivered, buyer)
    before = stored()
    client.force_login(buyer)

    response = client.post(
        reverse("refunds:reply", args=[request.pk]), {"body": "More", "photos": [bomb()]}
    )

    assert response.status_code == 400
    assert response.context["form"].errors["photos"] == [BOMB_DETAIL]
    assert f"Add photos: {BOMB_DETAIL}" in response.content.decode()
    assert stored() == before


# -- what is stored and served --------------------------------------------------------------


def test_a_buyers_gps_position_is_not_served_to_the_restaurant(client, buyer, partner, delivered):
    evidence = missing_tiramisu(delivered, buyer, [upload("where.jpg", jpeg_with_gps())])
    evidence = evidence.evidence.get()
    client.force_login(partner)

    for size in ("", "thumb"):
        image = Image.open(io.BytesIO(served(client, evidence, size)))
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
        assert image.getexif().get_ifd(GPS_IFD) == {}
        assert "icc_profile" not in image.info


def test_a_5000_by_4000_photo_is_stored_at_the_cap_and_its_thumbnail_is_small(
    client, buyer, delivered
):
    big = encoded(noise((500, 400)).resize((5000, 4000)), "JPEG", quality=90)
    request = missing_tiramisu(delivered, buyer, [upload("big.jpg", big, "image/jpeg")])
    evidence = request.evidence.get()
    client.force_login(buyer)

    full = served(client, evidence)
    thumbnail = served(client, evidence, "thumb")

    assert (evidence.width, evidence.height, evidence.size) == (2048, 1638, len(full))
    assert Image.open(io.BytesIO(full)).size == (2048, 1638)
    assert Image.open(io.BytesIO(thumbnail)).size == (320, 256)
    assert len(thumbnail) < len(full) // 4


def test_the_thumbnail_is_served_to_those_allowed_only(client, other_buyer, buyer, delivered):
    evidence = missing_tiramisu(delivered, buyer, [small_photo()]).evidence.get()
    client.force_login(other_buyer)

    url = reverse("refunds:evidence", args=[evidence.pk])
    assert client.get(f"{url}?size=thumb").status_code == 404


def test_admin_shows_the_thumbnail_linking_to_the_photo(client, agent, buyer, delivered):
    request = missing_tiramisu(delivered, buyer, [small_photo()])
    evidence = request.evidence.get()
    client.force_login(agent)

    page = client.get(reverse("admin:refunds_refundrequest_change", args=[request.pk]))

    url = reverse("refunds:evidence", args=[evidence.pk])
    assert f'<a href="{url}" target="_blank" rel="noopener"><img src="{url}?size=thumb"' in (
        page.content.decode()
    )


# -- photos stored before re-encoding -------------------------------------------------------


def legacy_evidence(request, buyer, data: bytes, name="old.jpg") -> RefundEvidence:
    """A photo as uploads were stored before refunds.photos: the bytes as sent, no thumbnail
    (set up directly: no service stores a photo that way any more)."""
    return RefundEvidence.objects.create(
        request=request,
        file=ContentFile(data, name=name),
        content_type="image/jpeg",
        size=len(data),
        uploaded_by=buyer,
    )


def test_a_photo_without_a_thumbnail_has_no_thumbnail_url(client, buyer, delivered):
    request = missing_tiramisu(delivered, buyer)
    evidence = legacy_evidence(request, buyer, jpeg_with_gps())
    client.force_login(buyer)

    url = reverse("refunds:evidence", args=[evidence.pk])
    assert client.get(f"{url}?size=thumb").status_code == 404


def test_the_migration_re_encodes_stored_photos_and_deletes_the_originals(buyer, delivered):
    request = missing_tiramisu(delivered, buyer)
    old = legacy_evidence(request, buyer, jpeg_with_gps())
    missing = legacy_evidence(request, buyer, jpeg_with_gps(), "lost.jpg")
    old_name, missing_name = old.file.name, missing.file.name
    missing.file.storage.delete(missing_name)
    migration = importlib.import_module("refunds.migrations.0006_refundevidence_reencode_existing")

    migration.reencode_existing(apps, None)

    old.refresh_from_db()
    assert old.file.name != old_name
    assert not old.file.storage.exists(old_name)
    with old.file.storage.open(old.file.name) as file:
        image = Image.open(io.BytesIO(file.read()))
    assert dict(image.getexif()) == {}
    assert (old.width, old.height, old.content_type) == (64, 48, "image/jpeg")
    assert old.thumbnail
    # A file that cannot be read (here: lost from storage) is left as it was.
    assert RefundEvidence.objects.filter(pk=missing.pk).values_list("file", "thumbnail").get() == (
        missing_name,
        "",
    )
