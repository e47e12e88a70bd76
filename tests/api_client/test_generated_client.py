"""Issue 10 part 7: a Python client generated from `/api/schema/` with openapi-python-client, as a
mobile or partner team would make it, imports whole and carries a buyer and a partner through
an order and its cancellation against a live server, using nothing but the generated code.

The client is generated once per test session: about 4 s for the schema, validated with
warnings as errors, and 2 s for the code, measured on a loaded 2-CPU machine; the journey itself
takes a few seconds."""

import importlib
import io
import pkgutil
import sys
import uuid
from decimal import Decimal as D

import attrs
import pytest
from django.core.management import call_command
from openapi_python_client import generate
from openapi_python_client.config import Config, ConfigFile, MetaType
from PIL import Image

from refunds.models import Refund, RefundRequest
from tests.conftest import advance, place_order

DELIVER = ("accept", "start_preparation", "mark_ready", "dispatch", "deliver")

PACKAGE = "lojix_client"
PASSWORD = "pass-word-123"  # the factories' password


@pytest.fixture(scope="session")
def lojix_client(tmp_path_factory):
    """The generated package, imported. The schema is written as `manage.py spectacular`
    writes it, validated and with warnings as errors; the generator runs without its
    formatting hooks (the code is used, not read)."""
    root = tmp_path_factory.mktemp("generated-client")
    schema = root / "openapi.json"
    call_command(
        "spectacular", "--format", "openapi-json", "--file", str(schema),
        "--validate", "--fail-on-warn",
    )  # fmt: skip
    config = Config.from_sources(
        # The chargeback evidence PDF is bytes, as the generator reads only octet-streams.
        config_file=ConfigFile(
            post_hooks=[], content_type_overrides={"application/pdf": "application/octet-stream"}
        ),
        meta_type=MetaType.NONE,
        document_source=schema,
        file_encoding="utf-8",
        overwrite=True,
        output_path=root / PACKAGE,
    )
    errors = generate(config=config)
    assert [f"{e.header}: {e.detail}" for e in errors] == []
    sys.path.insert(0, str(root))
    try:
        package = importlib.import_module(PACKAGE)
        importlib.import_module(f"{PACKAGE}.models")  # package.models from here on
        importlib.import_module(f"{PACKAGE}.api")
        yield package
    finally:
        sys.path.remove(str(root))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_every_generated_module_imports(lojix_client):
    """Today's regression: the sign-in module did not import (one body under three content
    types). Every operation's module must import, sign-in first."""
    names = [m.name for m in pkgutil.walk_packages(lojix_client.api.__path__, f"{PACKAGE}.api.")]
    for name in names:
        importlib.import_module(name)
    assert f"{PACKAGE}.api.auth.auth_token_create" in names
    assert f"{PACKAGE}.api.restaurants.restaurants_menu_list" in names
    assert len(names) > 60


def test_the_token_request_asks_only_for_what_a_person_types(lojix_client):
    """Request and response are separate components: `token` is read from the answer, never a
    required input."""
    models = lojix_client.models
    body = models.TokenRequest(username="ada", password=PASSWORD)
    assert body.to_dict() == {"username": "ada", "password": PASSWORD}
    assert models.Token.from_dict({"token": "abc"}).token == "abc"


@pytest.mark.django_db(transaction=True)
def test_buyer_and_partner_journey_through_the_generated_client(
    lojix_client, live_server, buyer, partner, restaurant, menu
):
    api, models = lojix_client.api, lojix_client.models
    restaurant.cancellation_window_minutes = 15
    restaurant.save(update_fields=["cancellation_window_minutes"])
    anonymous = lojix_client.Client(base_url=live_server.url, raise_on_unexpected_status=True)

    # Sign in: a wrong password is a documented 400, the right one a token.
    token_create = importlib.import_module(f"{PACKAGE}.api.auth.auth_token_create")
    refused = token_create.sync(
        client=anonymous, body=models.TokenRequest(username="ada", password="guess")
    )
    assert isinstance(refused, models.ApiError)
    assert refused.code == "invalid_credentials"
    diner = _signed_in(lojix_client, live_server, token_create, "ada")
    kitchen = _signed_in(lojix_client, live_server, token_create, "luigi")

    # Browse, with no account: the restaurant's terms, then its menu.
    restaurants = _op(api, "restaurants.restaurants_list").sync(client=anonymous)
    roma = next(r for r in restaurants.results if r.name == "Trattoria Roma")
    assert (roma.is_open, roma.cancellation.window_minutes, roma.cancellation.fee_percent) == (
        True, 15, "15.00",
    )  # fmt: skip
    dishes = _op(api, "restaurants.restaurants_menu_list").sync(id=roma.id, client=anonymous)
    margherita = next(d for d in dishes.results if d.name == "Margherita")
    assert (margherita.price, margherita.available) == ("12.50", True)

    # Order: 2 x 12.50 + 2.99 delivery = 27.99, free to cancel until accepted.
    placed = _op(api, "orders.orders_create").sync_detailed(
        client=diner,
        body=models.OrderCreateRequest(
            restaurant=roma.id,
            items=[models.OrderLineInRequest(menu_item=margherita.id, quantity=2)],
            fulfillment=models.FulfillmentEnum.DELIVERY,
            delivery_address="7 Harbour Road",
        ),
        idempotency_key=str(uuid.uuid4()),
    )
    assert placed.status_code == 201
    order = placed.parsed
    assert (order.status, order.total, order.amount_paid) == (
        models.OrderStatusEnum.PLACED, "27.99", "27.99",
    )  # fmt: skip
    assert order.cancellation.requires_restaurant_approval is False

    # The partner accepts.
    accepted = _op(api, "seller.seller_orders_accept_create").sync(id=order.id, client=kitchen)
    assert accepted.status == models.OrderStatusEnum.ACCEPTED
    assert accepted.buyer_first_name == "Ada"

    # The buyer asks to cancel at the quoted fee: 15 % of 27.99 = 4.20, 23.79 back.
    quote = _op(api, "orders.orders_retrieve").sync(id=order.id, client=diner).cancellation
    assert (quote.allowed, quote.requires_restaurant_approval) == (True, True)
    assert (quote.fee, quote.refund_amount, quote.clauses) == ("4.20", "23.79", ["K-B1", "L-2.1"])
    asked = _op(api, "orders.orders_cancel_create").sync_detailed(
        id=order.id, client=diner, body=models.OrderCancelRequest(quote=quote.fee)
    )
    assert asked.status_code == 200
    assert asked.parsed.status == models.OrderStatusEnum.CANCELLATION_REQUESTED

    # The partner sees the request with the fee it keeps, and approves.
    waiting = _op(api, "seller.seller_cancellation_requests_list").sync(client=kitchen)
    assert [(r.id, r.fee_kept, r.refund_amount) for r in waiting.results] == [
        (order.id, "4.20", "23.79")
    ]
    approved = _op(api, "seller.seller_cancellation_requests_approve_create").sync(
        order_id=order.id, client=kitchen
    )
    assert approved.status == models.OrderStatusEnum.CANCELLED

    # The buyer sees the refund on the order.
    final = _op(api, "orders.orders_retrieve").sync(id=order.id, client=diner)
    assert final.status == models.OrderStatusEnum.CANCELLED
    assert [(r.amount, r.destination.value, r.status.value) for r in final.refunds] == [
        ("23.79", "card", "succeeded")
    ]
    transitions = [(e.from_status, e.to_status) for e in final.timeline if e.to_status]
    assert transitions[-3:] == [
        ("placed", "accepted"),
        ("accepted", "cancellation_requested"),
        ("cancellation_requested", "cancelled"),
    ]
    assert list(Refund.objects.filter(order_id=order.id).values_list("amount", flat=True)) == [
        D("23.79")
    ]


@pytest.mark.django_db(transaction=True)
def test_a_claim_with_photos_goes_multipart_through_the_generated_client(
    lojix_client, live_server, buyer, restaurant, menu
):
    """The endpoints that take files: a claim with its photo (multipart, lines as JSON parts),
    then one more photo (multipart only); the JSON body of the same claim has no photos."""
    models, types = lojix_client.models, importlib.import_module(f"{PACKAGE}.types")
    order = advance(place_order(buyer, restaurant, {menu["Tiramisu"]: 1}), *DELIVER)
    token_create = importlib.import_module(f"{PACKAGE}.api.auth.auth_token_create")
    diner = _signed_in(lojix_client, live_server, token_create, "ada")
    line = _op(lojix_client.api, "orders.orders_retrieve").sync(id=order.pk, client=diner).items[0]
    assert "photos" not in attrs.fields_dict(models.RefundRequestCreateJsonRequest)
    assert "photos" in attrs.fields_dict(models.RefundRequestCreateRequest)

    claim = _op(lojix_client.api, "refund_requests.refund_requests_create").sync_detailed(
        client=diner,
        body=models.RefundRequestCreateRequest(
            order=order.pk,
            reason=models.RefundReasonEnum.MISSING_ITEMS,
            items=[models.ClaimLineInRequest(order_item=line.id, quantity=1)],
            description="No tiramisu in the bag.",
            photos=[types.File(payload=io.BytesIO(_png("red")), file_name="bag.png",
                               mime_type="image/png")],
        ),
    )  # fmt: skip
    assert claim.status_code == 201, claim.content
    assert [(i.order_item, i.quantity) for i in claim.parsed.items] == [(line.id, 1)]
    assert len(claim.parsed.evidence) == 1

    more = _op(lojix_client.api, "refund_requests.refund_requests_evidence_create").sync_detailed(
        id=claim.parsed.id,
        client=diner,
        body=models.EvidenceUploadRequest(
            file=types.File(payload=io.BytesIO(_png("blue")), file_name="receipt.png",
                            mime_type="image/png")
        ),
    )  # fmt: skip
    assert more.status_code == 201, more.content
    # Both arrived as images; the service re-encodes every photo (refunds.photos).
    assert [(e.width, e.content_type) for e in more.parsed.evidence] == [(8, "image/jpeg")] * 2
    assert RefundRequest.objects.get().evidence.count() == 2


def _png(colour: str) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return buffer.getvalue()


def _signed_in(lojix_client, live_server, token_create, username: str):
    anonymous = lojix_client.Client(base_url=live_server.url, raise_on_unexpected_status=True)
    body = lojix_client.models.TokenRequest(username=username, password=PASSWORD)
    answer = token_create.sync_detailed(client=anonymous, body=body)
    assert answer.status_code == 200, answer.content
    return lojix_client.AuthenticatedClient(
        base_url=live_server.url, token=answer.parsed.token, prefix="Token",
        raise_on_unexpected_status=True,
    )  # fmt: skip


def _op(api, dotted: str):
    """A generated operation module, e.g. `orders.orders_create`."""
    return importlib.import_module(f"{api.__name__}.{dotted}")
