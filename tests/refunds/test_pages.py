"""Refund pages (journeys "Buyer" 4 and "Restaurant partner" 4): report a problem with the
reasons the policy groups and opens or closes for the order, preview, submit; the request page
with who has it, when it is due, messages and, once decided, the money and its dates; the
partner's verification requests. Every refusal creates nothing."""

import datetime as dt
import html as html_lib
import io
import re
from decimal import Decimal as D

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from core.errors import DomainError
from refunds.models import (
    Refund,
    RefundEvidence,
    RefundMessage,
    RefundRequest,
    RefundRequestEvent,
)
from refunds.policy import REASON_GROUPS
from refunds.services.decisions import refund_request_approve, refund_request_partially_approve
from refunds.services.requests import (
    refund_request_ask_restaurant,
    refund_request_reply,
    refund_request_request_info,
    refund_request_submit,
)
from tests.conftest import advance, give_credit, place_order, refunds_processed
from tests.factories import MenuItemFactory, RestaurantFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("refunds:list")
VERIFICATIONS = reverse("seller:verifications")
DESCRIPTION = "The tiramisu was not in the bag."
TIMES = "\N{MULTIPLICATION SIGN}"


def photo(name="bag.png", size=(8, 8)):
    """A real PNG, as a browser would upload it."""
    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, "PNG")
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/png")


def text(response) -> str:
    """The page's visible text on one line, tags removed."""
    body = response.content.decode() if hasattr(response, "content") else response
    body = re.sub(r"<(script|style).*?</\1>", " ", body, flags=re.S)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def flash(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def photo_errors(response) -> list[str]:
    """The form's errors on its photos field: a bad photo is refused by the form itself."""
    return response.context["form"].errors.get("photos", [])


def reason_item(response, code) -> str:
    """The text of one reason on the form."""
    match = re.search(
        rf'<li class="reason[^"]*" id="reason-{code}">.*?</li>', _html(response), re.S
    )
    return text(match.group(0)) if match else ""


def _html(response) -> str:
    return response.content.decode()


@pytest.fixture
def ada(client, buyer):
    client.force_login(buyer)
    return client


@pytest.fixture
def delivered(now, buyer, restaurant, menu):
    """2 Margherita + 1 Tiramisu + 2.99 delivery = 33.99, of which 5.00 promotional credit and
    28.99 by card; delivered at NOW (12:00 UTC, Friday 20 Nov 2026)."""
    give_credit(buyer, "5.00", kind="promo")
    order = place_order(
        buyer, restaurant, {menu["Margherita"]: 2, menu["Tiramisu"]: 1}, use_credit=True
    )
    assert (order.total, order.amount_paid, order.amount_charged) == (
        D("33.99"),
        D("28.99"),
        D("28.99"),
    )
    return advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")


def line(order, name) -> int:
    return order.items.get(name=name).pk


def new_url(order) -> str:
    return reverse("refunds:new", args=[order.pk])


def claim(order, reason, **fields) -> dict:
    """The form's POST data: nothing picked unless given, original method, submit."""
    data = {f"qty_{item.pk}": "0" for item in order.items.all()}
    data |= {"reason": reason, "description": "", "preferred_method": "original"}
    data |= {"action": "submit"}
    return data | fields


def submit(order, buyer, reason, **kwargs) -> RefundRequest:
    return refund_request_submit(order_id=order.pk, actor=buyer, reason=reason, **kwargs)


def missing_tiramisu(order, buyer, **kwargs) -> RefundRequest:
    return submit(
        order,
        buyer,
        "missing_items",
        items=[(line(order, "Tiramisu"), 1)],
        description=DESCRIPTION,
        photos=[photo()],
        **kwargs,
    )


# -- the order page links the form --------------------------------------------------------------


def test_a_received_order_offers_report_a_problem_and_an_open_one_does_not(
    ada, buyer, restaurant, delivered
):
    page = _html(ada.get(delivered.get_absolute_url()))
    assert f'href="{new_url(delivered)}">Report a problem</a>' in page

    placed = place_order(buyer, restaurant)
    assert "Report a problem" not in text(ada.get(placed.get_absolute_url()))


def test_a_delivery_still_in_the_kitchen_past_its_estimate_offers_report_a_problem(
    ada, buyer, restaurant, now
):
    order = advance(place_order(buyer, restaurant), "accept", "start_preparation")
    assert "Report a problem" not in text(ada.get(order.get_absolute_url()))

    now.move_to(order.estimated_delivery_at + dt.timedelta(minutes=1))
    page = _html(ada.get(order.get_absolute_url()))
    assert f'href="{new_url(order)}">Report a problem</a>' in page


# -- the form: reasons grouped, open or closed for this order -------------------------------


def test_the_form_groups_reasons_as_the_policy_does_and_says_which_are_open(ada, delivered):
    response = ada.get(new_url(delivered))

    assert response.status_code == 200
    groups = response.context["groups"]
    assert [(g.label, g.clause, tuple(r.code for r in g.reasons)) for g in groups] == [
        (label, clause, codes) for label, clause, codes in REASON_GROUPS
    ]
    closed = {r.code: (r.detail, r.clauses) for g in groups for r in g.reasons if not r.is_open}
    assert closed == {
        "significant_delay": (
            "0 minutes late is not over 2 hours; choose 'The delivery was late' instead.",
            ("L-3.1", "L-6.1"),
        ),
        "change_of_mind": (
            "A change of mind after the restaurant accepted is not refunded.",
            ("L-3.3",),
        ),
        "wrong_address": ("An incorrect address given at checkout is not refunded.", ("L-3.3",)),
        "customer_unavailable": (
            "An order the courier could not hand over is not refunded.",
            ("L-3.3",),
        ),
        "taste_preference": ("Taste is subjective and not refunded.", ("L-3.3",)),
        "appearance_variation": ("Normal variations in appearance are not refunded.", ("L-3.3",)),
        "spice_preference": (
            "Spice and seasoning preferences are not refunded; a dish prepared wrongly is "
            "(choose 'Prepared incorrectly').",
            ("L-3.3",),
        ),
        "weather_traffic_delay": (
            "Delays caused by weather or traffic are not refunded.",
            ("L-3.3",),
        ),
    }
    assert reason_item(response, "item_quality") == (
        "Quality issue with some items Open Pick the items below. Needs a photo and a "
        "description ( L-5.2 ). Open until 13:00 ( L-5.1 )."
    )
    assert reason_item(response, "taste_preference") == (
        "I did not like the taste Closed Taste is subjective and not refunded. Why? L-3.3"
    )
    page = text(response)
    assert "Full refund ( L-3.1 )" in page
    assert "Part of the order ( L-3.2 )" in page
    assert "Not covered ( L-3.3 )" in page
    # The item picker: one quantity per line, up to what was ordered.
    picker = response.context["form"].item_rows()
    assert [(item.name, list(field.field.choices)) for item, field in picker] == [
        ("Margherita", [(0, "0"), (1, "1"), (2, "2")]),
        ("Tiramisu", [(0, "0"), (1, "1")]),
    ]


@pytest.mark.parametrize(
    ("minutes", "is_open"), [(59, True), (60, False), (61, False), (24 * 60, False)]
)
def test_quality_reasons_close_with_the_delivery_window_and_say_when(
    ada, delivered, now, minutes, is_open
):
    now.move_to(delivered.delivered_at + dt.timedelta(minutes=minutes))

    response = ada.get(new_url(delivered))

    reasons = {r.code: r for g in response.context["groups"] for r in g.reasons}
    quality = ["unsafe_food", "severe_quality", "item_quality", "temperature"]
    quality += ["preparation_error", "packaging_spillage"]
    assert {code: reasons[code].is_open for code in quality} == dict.fromkeys(quality, is_open)
    # Not about quality: still open whatever the time.
    assert reasons["missing_items"].is_open
    assert reasons["wrong_order"].is_open
    if not is_open:
        # The tags' text joined by spaces: "13:00</time>." reads "13:00 ." here.
        assert reason_item(response, "item_quality") == (
            "Quality issue with some items Closed Window closed at Fri 20 Nov 2026, 13:00 . "
            "Why? L-5.1"
        )
        assert 'name="reason" value="item_quality" disabled' in _html(response)
        assert reasons["item_quality"].clauses == ("L-5.1",)


def test_another_buyers_order_has_no_form(ada, other_buyer, restaurant):
    theirs = place_order(other_buyer, restaurant)

    assert ada.get(new_url(theirs)).status_code == 404
    assert ada.post(new_url(theirs), claim(theirs, "not_delivered")).status_code == 404
    assert not RefundRequest.objects.exists()


def test_visitors_are_sent_to_sign_in(client, delivered):
    response = client.get(new_url(delivered))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


# -- preview and submit ------------------------------------------------------------------------


def test_preview_shows_the_exact_amount_where_it_goes_and_the_clause_and_creates_nothing(
    ada, delivered
):
    tiramisu = line(delivered, "Tiramisu")

    response = ada.post(
        new_url(delivered),
        claim(delivered, "missing_items", action="preview", **{f"qty_{tiramisu}": "1"}),
    )

    assert response.status_code == 200
    preview = response.context["preview"]
    # The Tiramisu's share of what was paid: 6.00 x 28.99 / 33.99 = 5.1173... -> 5.12 (D-7).
    assert (preview.eligibility.amount, preview.eligibility.clauses) == (D("5.12"), ("L-3.2",))
    section = text(
        re.search(r'<section class="card preview".*?</section>', _html(response), re.S)[0]
    )
    assert section == (
        "What the policy would do 5.12 USD Suggested to support, who decide within 48 hours "
        "( L-4.1 ). It would go 5.12 USD to your card. The paid share of the items named "
        "(L-3.2). Why? L-3.2"
    )
    # The form keeps what was filled in.
    assert 'value="missing_items" checked' in _html(response)
    assert not RefundRequest.objects.exists()


def test_preview_of_a_reason_the_policy_does_not_cover_says_so(ada, delivered):
    response = ada.post(new_url(delivered), claim(delivered, "change_of_mind", action="preview"))

    assert "Not covered A change of mind after the restaurant accepted is not refunded." in text(
        response
    )
    assert not RefundRequest.objects.exists()


def test_preview_with_account_credit_puts_it_all_in_the_wallet(ada, delivered):
    margherita = line(delivered, "Margherita")

    response = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "missing_items",
            action="preview",
            preferred_method="account_credit",
            **{f"qty_{margherita}": "2"},
        ),
    )

    # 25.00 x 28.99 / 33.99 = 21.3224... -> 21.32
    assert "It would go 21.32 USD as account credit." in text(response)


def test_a_missing_items_claim_with_a_photo_goes_to_support_with_the_exact_amount(
    ada, buyer, delivered
):
    tiramisu = line(delivered, "Tiramisu")

    response = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "missing_items",
            description=DESCRIPTION,
            photos=[photo()],
            **{f"qty_{tiramisu}": "1"},
        ),
    )

    request = RefundRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == request.get_absolute_url()
    assert (request.status, request.buyer, request.order_id) == (
        "under_review",
        buyer,
        delivered.pk,
    )
    assert (request.suggested_amount, request.suggested_clauses) == (D("5.12"), ["L-3.2"])
    assert [(i.order_item_id, i.quantity) for i in request.items.all()] == [(tiramisu, 1)]
    assert (request.description, request.preferred_method) == (DESCRIPTION, "original")
    # An opaque PNG is stored re-encoded as a JPEG (refunds.photos).
    assert [(e.content_type, e.width, e.height) for e in request.evidence.all()] == [
        ("image/jpeg", 8, 8)
    ]
    assert request.review_due_at == request.submitted_at + dt.timedelta(hours=48)
    assert flash(response) == [
        f"Refund request #{request.pk} sent. Support decides by Sun 22 Nov 2026, 12:00."
    ]
    assert not Refund.objects.exists()


def test_items_picked_for_a_full_refund_reason_are_not_part_of_the_claim(ada, delivered):
    tiramisu = line(delivered, "Tiramisu")

    ada.post(new_url(delivered), claim(delivered, "wrong_order", **{f"qty_{tiramisu}": "1"}))

    request = RefundRequest.objects.get()
    assert (request.reason, request.suggested_amount) == ("wrong_order", D("28.99"))
    assert not request.items.exists()


def test_a_reason_the_policy_does_not_cover_is_declined_on_the_request_page(ada, delivered):
    response = ada.post(new_url(delivered), claim(delivered, "change_of_mind"), follow=True)

    request = RefundRequest.objects.get()
    assert (request.status, request.decided_by) == ("denied", None)
    page = text(response)
    assert (
        f"Refund request #{request.pk}: A change of mind after the restaurant accepted is not "
        "refunded." in page
    )
    assert "Who has it now Done" in page
    assert "by the policy, automatically" in page
    assert (
        "Declined A change of mind after the restaurant accepted is not refunded. Why? L-3.3"
        in (page)
    )
    assert "You may ask a supervisor to review this decision ( L-8.1 )." in page
    assert not Refund.objects.exists()


def test_a_health_concern_is_refunded_at_once_and_the_page_says_where_it_went(ada, delivered):
    response = ada.post(
        new_url(delivered),
        claim(
            delivered, "health_concern", description="Felt sick", preferred_method="account_credit"
        ),
        follow=True,
    )

    request = RefundRequest.objects.get()
    assert request.status == "refunded"
    page = text(response)
    assert f"Refund request #{request.pk}: 28.99 USD refunded at once." in page
    assert "As account credit Available now in your wallet Succeeded 28.99 USD" in page


# -- refusals: a clear message, nothing stored --------------------------------------------------


def _assert_nothing_stored():
    assert RefundRequest.objects.count() == 0
    assert RefundEvidence.objects.count() == 0
    assert RefundRequestEvent.objects.count() == 0


def test_a_text_file_named_png_is_refused_and_nothing_is_stored(ada, delivered):
    fake = SimpleUploadedFile("spill.png", b"this is not a picture", content_type="image/png")

    response = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "item_quality",
            description="Cold and soggy",
            photos=[photo(), fake],
            **{f"qty_{line(delivered, 'Margherita')}": "1"},
        ),
    )

    assert response.status_code == 400
    assert (flash(response), photo_errors(response)) == (
        [],
        ["spill.png is not an image we can read."],
    )
    assert "Photos: spill.png is not an image we can read." in text(response)
    _assert_nothing_stored()


def test_a_photo_over_the_size_limit_is_refused_and_nothing_is_stored(ada, delivered, settings):
    settings.LOJIX_PHOTO_MAX_BYTES = 1024 * 1024
    # A real PNG of about 1.2 MB: random pixels do not compress.
    noise = Image.frombytes("RGB", (640, 640), bytes(range(256)) * 4800)
    buffer = io.BytesIO()
    noise.save(buffer, "PNG", compress_level=0)
    big = SimpleUploadedFile("big.png", buffer.getvalue(), content_type="image/png")
    assert big.size > 1024 * 1024

    response = ada.post(
        new_url(delivered),
        claim(
            delivered, "missing_items", photos=[big], **{f"qty_{line(delivered, 'Tiramisu')}": "1"}
        ),
    )

    assert response.status_code == 400
    assert photo_errors(response) == ["big.png is larger than 1 MB."]
    assert "Photos: big.png is larger than 1 MB." in text(response)
    _assert_nothing_stored()


def test_a_quality_claim_without_a_photo_is_refused_with_its_clause(ada, delivered):
    response = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "item_quality",
            description="Burnt",
            **{f"qty_{line(delivered, 'Margherita')}": "1"},
        ),
    )

    assert response.status_code == 400
    assert flash(response) == [
        "Quality issues need at least one clear photo and a description of the problem. Why? L-5.2"
    ]
    _assert_nothing_stored()


def test_more_than_five_photos_are_refused(ada, delivered):
    response = ada.post(
        new_url(delivered),
        claim(
            delivered,
            "missing_items",
            photos=[photo(f"p{n}.png") for n in range(6)],
            **{f"qty_{line(delivered, 'Tiramisu')}": "1"},
        ),
    )

    assert response.status_code == 400
    assert photo_errors(response) == ["A request can have at most 5 photos."]
    _assert_nothing_stored()


def test_a_partial_reason_without_items_is_refused(ada, delivered):
    response = ada.post(new_url(delivered), claim(delivered, "missing_items"))

    assert flash(response) == ["Choose the items and quantities concerned. Why? L-3.2"]
    _assert_nothing_stored()


def test_a_second_request_while_one_is_open_goes_to_the_open_one(ada, buyer, delivered):
    request = missing_tiramisu(delivered, buyer)

    response = ada.get(new_url(delivered))

    assert response.status_code == 302
    assert response["Location"] == request.get_absolute_url()
    assert flash(response) == [
        f"Order #{delivered.pk} already has refund request #{request.pk} in progress; you can "
        "add messages and photos to it."
    ]
    ada.post(new_url(delivered), claim(delivered, "wrong_order"))
    assert RefundRequest.objects.count() == 1


# -- the request page ------------------------------------------------------------------------


def test_the_request_page_under_review_says_who_has_it_and_when_it_is_due(ada, buyer, delivered):
    request = missing_tiramisu(delivered, buyer)

    response = ada.get(request.get_absolute_url())

    page = text(response)
    assert f"Refund request #{request.pk} Under review" in page
    assert "Who has it now Support" in page
    assert "Decision Decision due by Sun 22 Nov 2026, 12:00 ( L-4.1 )" in page
    assert "Reason Items are missing" in page
    assert f"1 {TIMES} Tiramisu {DESCRIPTION}" in page
    photo_url = reverse("refunds:evidence", args=[request.evidence.get().pk])
    assert f'<a href="{photo_url}"><img src="{photo_url}?size=thumb"' in _html(response)
    assert "Request submitted: Items are missing." in page
    assert "Support reviews this request by Sun 22 Nov 2026, 12:00. Why? L-4.1" in page
    assert "Decision 5.12" not in page  # nothing decided yet
    assert 'id="reply-form"' in _html(response)


def test_after_an_agent_approves_the_page_shows_the_amount_where_it_goes_and_the_dates(
    ada, buyer, agent, delivered
):
    request = missing_tiramisu(delivered, buyer)
    refund_request_approve(request_id=request.pk, actor=agent)
    refunds_processed()

    response = ada.get(request.get_absolute_url())

    page = text(response)
    assert "Refunded" in page
    assert "Who has it now Done" in page
    assert "Decided Fri 20 Nov 2026, 12:00 by support" in page
    assert (
        "Decision 5.12 USD Approved at the amount the policy sets for this reason. Why? L-3.2"
        in page
    )
    # L-4.2 from Friday 20 Nov 2026: processed within 3 business days (Wed 25); at the bank 1+5
    # business days on (Thanksgiving, Thu 26, skipped: Tue 1 Dec) to 3+10 (Thu 10 Dec).
    assert (
        "To your card Processed by Wed 25 Nov 2026; at your bank between Tue 1 Dec and "
        "Thu 10 Dec 2026 ( L-4.2 ) Succeeded 5.12 USD"
    ) in page
    assert "messages are closed" in page
    assert 'id="reply-form"' not in _html(response)


def test_a_partial_approval_as_account_credit_is_available_at_once(ada, buyer, agent, delivered):
    request = missing_tiramisu(delivered, buyer, preferred_method="account_credit")
    refund_request_partially_approve(
        request_id=request.pk,
        actor=agent,
        amount=D("3.00"),
        explanation="Half of the tiramisu was there.",
    )

    page = text(ada.get(request.get_absolute_url()))

    assert "Decision 3.00 USD Half of the tiramisu was there. Why? L-3.2 , L-4.1" in page
    assert "As account credit Available now in your wallet Succeeded 3.00 USD" in page


def test_a_question_from_support_pauses_the_clock_and_is_answered_on_the_page(
    ada, buyer, agent, delivered
):
    request = missing_tiramisu(delivered, buyer)
    refund_request_request_info(request_id=request.pk, actor=agent, question="Was the bag sealed?")

    page = text(ada.get(request.get_absolute_url()))

    assert "Waiting for your answer" in page
    assert "Who has it now You: support asked you a question" in page
    assert "Decision Paused while we wait for your answer" in page
    assert "Support · Fri 20 Nov 2026, 12:00 Was the bag sealed?" in page

    response = ada.post(
        reverse("refunds:reply", args=[request.pk]),
        {"body": "Yes, sealed.", "photos": [photo("seal.png")]},
    )

    assert response.status_code == 302
    assert flash(response) == [f"Your message with 1 photo was added to request #{request.pk}."]
    request.refresh_from_db()
    assert request.status == "under_review"
    assert [(m.role, m.body) for m in request.messages.all()] == [
        ("support", "Was the bag sealed?"),
        ("buyer", "Yes, sealed."),
    ]
    assert request.evidence.count() == 2


def test_a_reply_with_a_bad_photo_is_refused_and_nothing_is_stored(ada, buyer, delivered):
    request = missing_tiramisu(delivered, buyer)
    fake = SimpleUploadedFile("more.png", b"<svg></svg>", content_type="image/png")

    response = ada.post(
        reverse("refunds:reply", args=[request.pk]), {"body": "Another one", "photos": [fake]}
    )

    assert response.status_code == 400
    assert photo_errors(response) == ["more.png is not an image we can read."]
    assert "Add photos: more.png is not an image we can read." in text(response)
    assert (RefundEvidence.objects.count(), RefundMessage.objects.count()) == (1, 0)


def test_a_photo_for_someone_elses_request_is_refused_and_nothing_is_stored(
    client, buyer, other_buyer, delivered
):
    request = missing_tiramisu(delivered, buyer)
    client.force_login(other_buyer)

    response = client.post(
        reverse("refunds:reply", args=[request.pk]), {"body": "Mine now", "photos": [photo()]}
    )

    assert response.status_code == 404
    assert client.get(request.get_absolute_url()).status_code == 404
    assert (RefundEvidence.objects.count(), RefundMessage.objects.count()) == (1, 0)
    assert RefundRequest.objects.count() == 1


def test_support_asking_the_restaurant_is_shown_as_such(ada, buyer, agent, delivered):
    request = missing_tiramisu(delivered, buyer)
    refund_request_ask_restaurant(
        request_id=request.pk, actor=agent, question="Did the tiramisu leave the kitchen?"
    )

    page = text(ada.get(request.get_absolute_url()))

    assert "Checking with the restaurant" in page
    assert "Who has it now The restaurant, checking for support" in page
    assert "Decision due by Sun 22 Nov 2026, 12:00" in page
    assert (
        "Support, to the restaurant · Fri 20 Nov 2026, 12:00 Did the tiramisu leave the kitchen?"
        in (page)
    )


def test_the_list_shows_the_buyers_requests_only(ada, buyer, other_buyer, agent, delivered, menu):
    mine = missing_tiramisu(delivered, buyer)
    theirs_order = place_order(other_buyer, delivered.restaurant, {menu["Lemonade"]: 1})
    advance(theirs_order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
    submit(theirs_order, other_buyer, "wrong_order")

    response = ada.get(LIST)

    rows = re.findall(r'<tr id="request-(\d+)">', _html(response))
    assert rows == [str(mine.pk)]
    assert (
        f"#{mine.pk} Fri 20 Nov 2026, 12:00 #{delivered.pk} Trattoria Roma Items are missing Under "
        "review decision due by Sun 22 Nov 2026, 12:00 Support"
    ) in text(response)
    assert f'href="{LIST}">Refund requests</a>' in _html(ada.get(delivered.get_absolute_url()))


# -- the partner's verification requests ---------------------------------------------------


@pytest.fixture
def luigi(client, partner):
    client.force_login(partner)
    return client


@pytest.fixture
def asked(buyer, agent, delivered):
    request = missing_tiramisu(delivered, buyer)
    return refund_request_ask_restaurant(
        request_id=request.pk, actor=agent, question="Did the tiramisu leave the kitchen?"
    )


def test_the_seller_order_page_sends_the_partner_to_supports_question(luigi, asked, delivered):
    response = luigi.get(reverse("seller:order", args=[delivered.pk]))

    link = f'href="{VERIFICATIONS}#verification-{asked.pk}" class="button secondary">Answer support'
    assert link in _html(response)
    assert f"Support asks you to verify refund request #{asked.pk} on this order" in text(response)
    assert "Nothing left to do on this order" not in text(response)


def test_the_partner_sees_the_question_and_the_claim(luigi, asked, delivered):
    response = luigi.get(VERIFICATIONS)

    assert response.status_code == 200
    card = re.search(
        rf'<article[^>]*id="verification-{asked.pk}">.*?</article>', _html(response), re.S
    )
    assert text(card[0]) == (
        f"Order #{delivered.pk} · refund request #{asked.pk} Waiting for you Trattoria Roma · "
        "Delivery · for Ada Support asks (Fri 20 Nov 2026, 12:00) : Did the tiramisu leave the "
        f"kitchen? Claim Items are missing Items 1 {TIMES} Tiramisu The buyer says {DESCRIPTION} "
        "Photos Support decides by Sun 22 Nov 2026, 12:00 Your answer to support Send answer"
    )
    photo_url = reverse("refunds:evidence", args=[asked.evidence.get().pk])
    assert f'<a href="{photo_url}"><img src="{photo_url}?size=thumb"' in card[0]
    assert "Verifications (1)" in text(response)


def test_the_partner_answers_with_a_note_and_support_decides(luigi, asked):
    response = luigi.post(
        reverse("seller:verification-answer", args=[asked.pk]),
        {"note": "It was packed; the courier may have lost it."},
    )

    assert response.status_code == 302
    assert flash(response) == [
        f"Refund request #{asked.pk}: thank you, support has your answer and decides."
    ]
    asked.refresh_from_db()
    assert asked.status == "under_review"
    assert [(m.role, m.body) for m in asked.messages.order_by("pk")][-1] == (
        "restaurant",
        "It was packed; the courier may have lost it.",
    )
    assert "No verification requests are waiting." in text(luigi.get(VERIFICATIONS))


def test_an_empty_note_is_refused_and_changes_nothing(luigi, asked):
    response = luigi.post(reverse("seller:verification-answer", args=[asked.pk]), {"note": " "})

    # Said on the claim's own form, which keeps what was typed (400).
    assert response.status_code == 400
    assert [(r.pk, r.note_error) for r in response.context["requests"]] == [
        (asked.pk, f"Refund request #{asked.pk}: Write a note.")
    ]
    assert f"Refund request #{asked.pk}: Write a note." in text(response)
    asked.refresh_from_db()
    assert asked.status == "awaiting_restaurant"
    assert not asked.messages.filter(role="restaurant").exists()


def test_another_restaurants_partner_gets_a_404_and_changes_nothing(client, asked):
    kenji = UserFactory(username="kenji")
    other = RestaurantFactory(name="Sushi Kyo", slug="kyo", members=[kenji])
    MenuItemFactory(restaurant=other, name="Nigiri")
    client.force_login(kenji)

    response = client.post(
        reverse("seller:verification-answer", args=[asked.pk]), {"note": "Not ours"}
    )

    assert response.status_code == 404
    assert f"verification-{asked.pk}" not in _html(client.get(VERIFICATIONS))
    asked.refresh_from_db()
    assert asked.status == "awaiting_restaurant"
    assert not asked.messages.filter(role="restaurant").exists()


def test_a_claim_support_is_not_asking_about_cannot_be_answered(luigi, buyer, delivered):
    request = missing_tiramisu(delivered, buyer)

    response = luigi.post(
        reverse("seller:verification-answer", args=[request.pk]), {"note": "Hello"}
    )

    assert flash(response) == [
        f"Refund request #{request.pk}: Support is not waiting for your answer."
    ]
    assert not RefundMessage.objects.exists()


def test_a_buyer_who_is_no_partner_sees_the_portal_notice(ada):
    assert ada.get(VERIFICATIONS).status_code == 403


# -- constant query counts ---------------------------------------------------------------------


def _busy_request(buyer, agent, order, rounds: int) -> RefundRequest:
    request = missing_tiramisu(order, buyer)
    for n in range(rounds):
        refund_request_reply(
            request_id=request.pk, actor=buyer, body=f"More {n}", photos=[photo(f"m{n}.png")]
        )
        refund_request_request_info(request_id=request.pk, actor=agent, question=f"Q{n}?")
        refund_request_reply(request_id=request.pk, actor=buyer, body=f"A{n}")
    return request


@pytest.mark.parametrize("rounds", [0, 4])
def test_request_page_query_count_is_constant(
    ada, buyer, agent, delivered, rounds, django_assert_num_queries
):
    request = _busy_request(buyer, agent, delivered, rounds)
    refund_request_approve(request_id=request.pk, actor=agent)

    # user (the session is in Redis), the request with order and restaurant (and who decided), its
    # items, events, messages, photos, refunds, and the header's counts in base.html
    with django_assert_num_queries(8):
        response = ada.get(request.get_absolute_url())

    assert response.status_code == 200
    assert len(response.context["thread"]) == 3 * rounds


@pytest.mark.parametrize("count", [1, 6])
def test_request_list_query_count_is_constant(
    ada, buyer, restaurant, menu, now, count, django_assert_num_queries
):
    for _ in range(count):
        order = place_order(buyer, restaurant, {menu["Lemonade"]: 1})
        advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
        submit(order, buyer, "wrong_order")

    # user (the session is in Redis), the count, the page of requests with orders and restaurants,
    # the header
    with django_assert_num_queries(4):
        response = ada.get(LIST)

    assert len(re.findall(r'<tr id="request-', _html(response))) == count


@pytest.mark.parametrize("count", [1, 4])
def test_verifications_query_count_is_constant(
    luigi, buyer, agent, restaurant, menu, now, count, django_assert_num_queries
):
    for _ in range(count):
        order = place_order(buyer, restaurant, {menu["Tiramisu"]: 2})
        advance(order, "accept", "start_preparation", "mark_ready", "dispatch", "deliver")
        request = missing_tiramisu(order, buyer)
        refund_request_ask_restaurant(request_id=request.pk, actor=agent, question="Packed?")

    # user (the session is in Redis), "is a partner", the requests with orders, restaurants and
    # buyers, their items, photos and support messages, the cancellation requests count, the header
    with django_assert_num_queries(8):
        response = luigi.get(VERIFICATIONS)

    assert len(response.context["requests"]) == count


def test_a_refusal_from_the_service_never_becomes_a_500(ada, buyer, delivered, monkeypatch):
    def refuse(**kwargs):
        raise DomainError("order_busy", "Try again in a moment.")

    monkeypatch.setattr("refunds.views.refund_request_submit", refuse)

    response = ada.post(new_url(delivered), claim(delivered, "wrong_order"))

    assert response.status_code == 409  # a refusal of the state, as on every page (D-10)
    assert flash(response) == ["Try again in a moment."]
