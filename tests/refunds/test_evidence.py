"""Protected evidence: a claim's photo is streamed only to the request's buyer, the partners of
the order's restaurant and support staff, as the type it was decoded as, never sniffed and never
kept by shared caches; anyone else gets a 404 and visitors are sent to sign in."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from refunds.services.requests import refund_request_submit
from tests.conftest import advance, place_order
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (12, 10), "blue").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def photo_bytes():
    return jpeg()


@pytest.fixture
def evidence(now, buyer, restaurant, menu, photo_bytes):
    """A missing-items claim on a delivered order with one JPEG, uploaded as "bag.png" with a
    PNG content type: the stored type is the decoded one."""
    order = place_order(buyer, restaurant, {menu["Tiramisu"]: 1})
    advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    request = refund_request_submit(
        order_id=order.pk,
        actor=buyer,
        reason="missing_items",
        items=[(order.items.get().pk, 1)],
        photos=[SimpleUploadedFile("bag.png", photo_bytes, content_type="image/png")],
    )
    return request.evidence.get()


def url(evidence) -> str:
    return reverse("refunds:evidence", args=[evidence.pk])


def stored(evidence) -> bytes:
    """What is stored and served: the upload re-encoded (refunds.photos), never the upload."""
    with evidence.file.storage.open(evidence.file.name, "rb") as file:
        return file.read()


def test_the_buyer_gets_the_photo_inline_with_its_decoded_type(
    client, buyer, evidence, photo_bytes
):
    client.force_login(buyer)

    response = client.get(url(evidence))

    assert response.status_code == 200
    served = b"".join(response.streaming_content)
    assert served == stored(evidence)
    assert served != photo_bytes
    assert Image.open(io.BytesIO(served)).size == (12, 10)
    assert evidence.content_type == "image/jpeg"
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"] == "inline"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private"
    assert response["Content-Length"] == str(len(served)) == str(evidence.size)


@pytest.fixture
def superuser(db):
    return UserFactory(username="root", is_staff=True, is_superuser=True)


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("buyer", 200),
        ("other_buyer", 404),
        ("partner", 200),
        ("other_partner", 404),
        ("agent", 200),
        ("supervisor", 200),
        ("superuser", 200),
    ],
)
def test_who_may_see_a_photo(client, request, evidence, photo_bytes, who, status):
    client.force_login(request.getfixturevalue(who))

    response = client.get(url(evidence))

    assert response.status_code == status
    if status == 200:
        assert b"".join(response.streaming_content) == stored(evidence)
    else:
        assert stored(evidence) not in response.content


def test_a_staff_member_without_a_support_role_gets_a_404(client, evidence):
    client.force_login(UserFactory(username="clerk", is_staff=True))

    assert client.get(url(evidence)).status_code == 404


def test_visitors_are_sent_to_sign_in(client, evidence):
    response = client.get(url(evidence))

    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url(evidence)}"


def test_a_photo_that_does_not_exist_is_a_404_like_anyone_elses(client, buyer, evidence):
    client.force_login(buyer)

    assert client.get(reverse("refunds:evidence", args=[evidence.pk + 1000])).status_code == 404


def test_only_get_is_served(client, buyer, evidence):
    client.force_login(buyer)

    assert client.post(url(evidence)).status_code == 405
