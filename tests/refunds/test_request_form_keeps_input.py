"""The report-a-problem form keeps what was typed and chosen (issue 10, part 8): photos chosen
before a preview or a refusal are held for the buyer and order and carried by id, never asked
for again, never usable by another buyer, at most 5 in all; a reason whose L-5.1 window has
closed cannot be chosen; held photos never sent are purged by age."""

import datetime as dt
import io
import re

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from refunds.models import HeldPhoto, RefundEvidence, RefundRequest
from refunds.photos import photo_prepare
from refunds.services.evidence import refund_photos_hold
from refunds.tasks import purge_held_photos
from tests.conftest import advance, place_order

pytestmark = pytest.mark.django_db


def photo(name="bag.png", colour="red"):
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


@pytest.fixture
def ada(client, buyer):
    client.force_login(buyer)
    return client


@pytest.fixture
def delivered(now, buyer, restaurant, menu):
    order = place_order(buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1})
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def new_url(order) -> str:
    return reverse("refunds:new", args=[order.pk])


def qty(order, name) -> str:
    return f"qty_{order.items.get(name=name).pk}"


def claim(order, reason, **fields) -> dict:
    data = {f"qty_{item.pk}": "0" for item in order.items.all()}
    data |= {"reason": reason, "description": "", "preferred_method": "original"}
    return data | {"action": "submit"} | fields


def hold(order, buyer, count=1) -> list[HeldPhoto]:
    prepared = [photo_prepare(photo(f"h{n}.png")) for n in range(count)]
    return refund_photos_hold(order_id=order.pk, actor=buyer, photos=prepared)


def carried_ids(response) -> list[int]:
    return [
        int(i) for i in re.findall(r'name="held_photos" value="(\d+)"', response.content.decode())
    ]


def test_preview_keeps_the_photos_and_shows_them_through_the_buyer_only_view(
    ada, client, buyer, other_buyer, delivered
):
    response = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "item_quality",
            action="preview",
            description="Cold and soggy",
            photos=[photo("a.png"), photo("b.png", "blue")],
            **{qty(delivered, "Margherita"): "1"},
        ),
    )

    assert response.status_code == 200
    held = list(HeldPhoto.objects.order_by("pk"))
    assert [(p.order_id, p.uploaded_by_id, p.content_type) for p in held] == [
        (delivered.pk, buyer.pk, "image/jpeg"),
        (delivered.pk, buyer.pk, "image/jpeg"),
    ]
    assert carried_ids(response) == [p.pk for p in held]
    page = response.content.decode()
    thumb = reverse("refunds:held_photo", args=[held[0].pk]) + "?size=thumb"
    assert f'src="{thumb}"' in page
    assert "choose your" not in page  # nothing asks for the photos again
    # The quality claim counts the held photos (L-5.2): the preview is not "not complete".
    assert response.context["preview"].route == "review"
    assert (RefundRequest.objects.count(), RefundEvidence.objects.count()) == (0, 0)

    served = ada.get(thumb)
    assert (served.status_code, served["Content-Type"]) == (200, "image/jpeg")
    client.force_login(other_buyer)
    assert client.get(thumb).status_code == 404


def test_submit_after_preview_attaches_the_held_photos_without_choosing_them_again(
    ada, buyer, delivered, django_capture_on_commit_callbacks
):
    held = hold(delivered, buyer, count=2)
    dropped = hold(delivered, buyer)[0]  # held on an earlier preview, then not carried

    with django_capture_on_commit_callbacks(execute=True):
        response = ada.post(
            new_url(delivered),
            claim(
                delivered,
                "item_quality",
                description="Cold and soggy",
                held_photos=[str(p.pk) for p in held],
                **{qty(delivered, "Margherita"): "1"},
            ),
        )

    request = RefundRequest.objects.get()
    assert response.status_code == 302
    assert request.status == "under_review"
    evidence = list(request.evidence.order_by("pk"))
    assert [e.file.name for e in evidence] == [p.file.name for p in held]
    assert [e.uploaded_by_id for e in evidence] == [buyer.pk, buyer.pk]
    assert all(default_storage.exists(e.file.name) for e in evidence)
    assert not HeldPhoto.objects.exists()
    assert not default_storage.exists(dropped.file.name)


def test_another_buyers_held_photo_is_refused_and_stays_theirs(
    ada, other_buyer, restaurant, menu, delivered
):
    theirs_order = place_order(other_buyer, restaurant, {menu["Margherita"]: 1})
    advance(theirs_order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    theirs = hold(theirs_order, other_buyer)[0]

    response = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "missing_items",
            description="No tiramisu",
            held_photos=[str(theirs.pk)],
            **{qty(delivered, "Tiramisu"): "1"},
        ),
    )

    assert response.status_code == 400
    assert response.context["form"].errors["held_photos"] == [
        "A photo you chose is no longer kept; choose it again."
    ]
    assert (RefundRequest.objects.count(), RefundEvidence.objects.count()) == (0, 0)
    assert HeldPhoto.objects.get().uploaded_by == other_buyer
    # The description and the items typed are kept.
    page = response.content.decode()
    assert "No tiramisu</textarea>" in page
    assert re.search(rf'name="{qty(delivered, "Tiramisu")}"[^>]*>.*?value="1" selected', page, re.S)


def test_held_and_new_photos_count_together_up_to_five(ada, buyer, delivered):
    held = hold(delivered, buyer, count=4)

    response = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "missing_items",
            action="preview",
            held_photos=[str(p.pk) for p in held],
            photos=[photo("e.png"), photo("f.png")],
            **{qty(delivered, "Tiramisu"): "1"},
        ),
    )

    assert response.status_code == 400
    assert response.context["form"].errors["photos"] == ["A request can have at most 5 photos."]
    assert HeldPhoto.objects.count() == 4
    assert carried_ids(response) == [p.pk for p in held]


def test_a_refused_submit_keeps_the_new_photos_for_the_next_try(ada, buyer, delivered):
    # Missing items without any item picked: refused by the service (L-3.2).
    response = ada.post(
        new_url(delivered),
        claim(delivered, "missing_items", description="Bag half empty", photos=[photo()]),
    )

    assert response.status_code == 400
    held = HeldPhoto.objects.get()
    assert carried_ids(response) == [held.pk]
    assert not RefundRequest.objects.exists()

    retry = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "missing_items",
            description="Bag half empty",
            held_photos=[str(held.pk)],
            **{qty(delivered, "Tiramisu"): "1"},
        ),
    )

    assert retry.status_code == 302
    assert RefundRequest.objects.get().evidence.count() == 1


def test_a_reason_whose_window_closed_is_disabled_and_refused(ada, delivered, now):
    now.move_to(delivered.delivered_at + dt.timedelta(minutes=61))

    page = ada.get(new_url(delivered)).content.decode()
    assert 'name="reason" value="temperature" disabled' in page
    assert 'name="reason" value="missing_items" required' in page

    response = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "temperature",
            description="Cold",
            photos=[photo()],
            **{qty(delivered, "Margherita"): "1"},
        ),
    )

    assert response.status_code == 400
    assert response.context["form"].errors["reason"] == [
        "The window for reporting this closed at Fri 20 Nov 2026, 13:00 (L-5.1)."
    ]
    assert (RefundRequest.objects.count(), RefundEvidence.objects.count()) == (0, 0)


def test_unsent_held_photos_are_purged_after_a_day_with_their_files(
    buyer, delivered, now, django_capture_on_commit_callbacks
):
    old = hold(delivered, buyer)[0]
    now.move_to(old.created_at + dt.timedelta(hours=23))
    recent = hold(delivered, buyer)[0]
    now.move_to(old.created_at + dt.timedelta(hours=24, seconds=1))

    with django_capture_on_commit_callbacks(execute=True):
        assert purge_held_photos() == {"deleted": 1}

    assert list(HeldPhoto.objects.values_list("pk", flat=True)) == [recent.pk]
    assert not default_storage.exists(old.file.name)
    assert not default_storage.exists(old.thumbnail.name)
    assert default_storage.exists(recent.file.name)


def test_the_purge_is_a_timed_rule_beat_runs_hourly(settings):
    assert settings.CELERY_BEAT_SCHEDULE["purge-held-photos"] == {
        "task": "refunds.tasks.purge_held_photos",
        "schedule": 3600.0,
    }
