"""The policy texts parsed into a reference (orders.policy_text): no database."""

import datetime as dt

import pytest

from orders.policy_seed import TEXTS
from orders.policy_text import Block, parse_policy, section_plain_text

LOJIX = (TEXTS / "lojix-refund-policy.txt").read_text(encoding="utf-8").strip()
KAJET = (TEXTS / "kajet-cancellation-policy.txt").read_text(encoding="utf-8").strip()
VERSION_1 = f"{LOJIX}\n\n{KAJET}"

ALL_CLAUSES = [
    *("L-1", "L-2", "L-2.1", "L-2.2", "L-3", "L-3.1", "L-3.2", "L-3.3", "L-4", "L-4.1"),
    *("L-4.2", "L-4.3", "L-5", "L-5.1", "L-5.2", "L-6", "L-6.1", "L-6.2", "L-7", "L-7.1"),
    *("L-7.2", "L-8", "L-8.1", "L-8.2", "L-9", "L-10", "L-11"),
    *("K-B", "K-B1", "K-B2", "K-B3", "K-S", "K-S1", "K-S2", "K-S3", "K-OV", "K-DR", "K-UP"),
]


def test_version_1_has_both_texts_with_their_titles_and_dates():
    document = parse_policy(VERSION_1)

    assert [(t.title, t.slug, t.last_updated_on) for t in document.texts] == [
        ("Refund Policy", "refund-policy", dt.date(2024, 11, 20)),
        ("Kajet's Cancellation Policy", "kajets-cancellation-policy", dt.date(2023, 10, 12)),
    ]
    assert document.texts[1].blocks[0].text.startswith("At Kajet, we understand")


def test_every_clause_id_of_both_texts_in_reading_order():
    assert parse_policy(VERSION_1).clause_ids() == ALL_CLAUSES


def test_numbered_sections_hold_their_subsections_and_blocks():
    refund_policy = parse_policy(VERSION_1).texts[0]
    cancellation = refund_policy.sections[1]

    assert (cancellation.anchor, cancellation.number, cancellation.title) == (
        "L-2",
        "2",
        "Order Cancellation",
    )
    customer = cancellation.sections[0]
    assert (customer.anchor, customer.level, customer.title) == (
        "L-2.1",
        3,
        "Customer-Initiated Cancellation",
    )
    assert customer.blocks[:2] == (
        Block("subheading", text="Before Restaurant Accepts Order"),
        Block(
            "list",
            items=(
                "You may cancel your order free of charge",
                "Full refund will be processed immediately",
                "Refund typically appears within 5-10 business days",
            ),
        ),
    )
    restaurant = cancellation.sections[1]
    assert restaurant.blocks[0] == Block(
        "paragraph", text="If a restaurant cancels your order due to:"
    )
    assert restaurant.blocks[-1].text.startswith("You will receive a full refund")


@pytest.mark.parametrize(
    ("case", "clause", "first_block"),
    [
        ("step subheading", "L-4.1", Block("subheading", text="Step 1: Contact Us")),
        (
            "lead-in sentence",
            "L-5.1",
            Block("paragraph", "Quality issues must be reported within:"),
        ),
        (
            "contact line",
            "L-11",
            Block("paragraph", "For refund requests or questions about this policy:"),
        ),
    ],
)
def test_subheadings_and_lead_ins(case, clause, first_block):
    sections = {s.anchor: s for s in parse_policy(VERSION_1).sections()}
    assert sections[clause].blocks[0] == first_block


def test_kajet_sections_take_the_platforms_ids_and_number_their_clauses():
    kajet = parse_policy(VERSION_1).texts[1]

    assert [(s.anchor, s.title) for s in kajet.sections] == [
        ("K-B", "Order Cancellation by Buyer"),
        ("K-S", "Cancellation by Seller"),
        ("K-OV", "Kajet's Cancellation Oversight"),
        ("K-DR", "Dispute Resolution"),
        ("K-UP", "Cancellation Policy Updates"),
    ]
    window = kajet.sections[0].sections[0]
    assert (window.anchor, window.number, window.title) == ("K-B1", "1", "Cancellation Window")
    assert window.blocks[0].text.startswith("Buyers have the option to cancel their orders")


def test_clause_texts_are_one_line_each_title_first():
    texts = parse_policy(VERSION_1).clause_texts()

    assert texts["L-6.1"] == (
        "Late Delivery. Under 30 minutes late: No refund, may receive credit; 30-60 minutes late: "
        "Partial refund or credit; Over 60 minutes late: Full refund eligible; Over 2 hours "
        "late: Automatic full refund."
    )
    assert texts["K-DR"].startswith("Dispute Resolution. In cases where there are disagreements")
    # A section's text includes its clauses.
    assert texts["L-8"].startswith("Dispute Resolution. Escalation Process. If you disagree")


def test_a_plain_text_is_paragraphs_and_lists_without_clause_ids():
    document = parse_policy("Refunds within 48 hours.\n- Card\n- Credit\n\nCredits expire.")

    (only,) = document.texts
    assert only.title == ""
    assert only.sections == ()
    assert only.blocks == (
        Block("paragraph", text="Refunds within 48 hours."),
        Block("list", items=("Card", "Credit")),
        Block("paragraph", text="Credits expire."),
    )
    assert document.clause_ids() == []


def test_an_empty_text_has_nothing():
    assert parse_policy("").texts == ()


def test_a_new_titled_section_gets_initials_as_its_id():
    document = parse_policy("Kajet's Cancellation Policy\nGift Card Returns\nThey are final.")

    (section,) = document.texts[0].sections
    assert (section.anchor, section_plain_text(section)) == (
        "K-GCR",
        "Gift Card Returns. They are final.",
    )
