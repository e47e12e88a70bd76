"""The chargeback evidence bundle as a PDF (L-8.2), drawn with ReportLab from the bundle that
`disputes.selectors.chargeback_evidence_bundle` builds from the records. Pure: a dict (and the
photos' bytes) in, the PDF's bytes out; no database, no settings."""

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import (
    Image,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

_STYLES = getSampleStyleSheet()
_BODY = _STYLES["BodyText"]
_SMALL = _STYLES["BodyText"].clone("small", fontSize=8, leading=10)
_TABLE = TableStyle(
    [
        ("FONTSIZE", (0, 0), (-1, -1), 8),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
        ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]
)


def _p(text, style=_SMALL) -> Paragraph:
    return Paragraph(escape("" if text is None else str(text)), style)


def _table(header: list[str], rows: list[list], widths: list[float]) -> Table:
    body = [[_p(cell) for cell in row] for row in rows] or [[_p("None")] + [""] * (len(header) - 1)]
    table = Table([[_p(h) for h in header], *body], colWidths=[w * mm for w in widths])
    table.setStyle(_TABLE)
    return table


def render_evidence_pdf(bundle: dict, photos: dict[int, bytes] | None = None) -> bytes:
    """The bundle as a PDF: the dispute, the order (lines, money, times), its timeline, card
    payments, refunds already made, refund requests with messages and photos (`photos`: image
    bytes by evidence id, drawn when given), and the policy version the buyer accepted."""
    photos = photos or {}
    money = bundle["currency"]
    chargeback, order = bundle["chargeback"], bundle["order"]
    story = [
        Paragraph(f"Chargeback evidence: order #{order['id']}", _STYLES["Title"]),
        _p(
            f"Bank reference {chargeback['bank_reference']}, reason {chargeback['reason_code']}; "
            f"disputed {chargeback['amount']} {money}, of which {bundle['already_refunded']} "
            f"{money} was already refunded; at stake {chargeback['amount_at_stake']} {money}. "
            f"Received {chargeback['received_at']}, evidence due by "
            f"{chargeback['evidence_due_by']}.",
            _BODY,
        ),
        Paragraph("Order", _STYLES["Heading2"]),
        _p(
            f"{order['restaurant']}, {order['fulfillment']}, status {order['status']}; buyer "
            f"{order['buyer']} ({order['buyer_email']}); address {order['delivery_address']}.",
            _BODY,
        ),
        _table(
            ["Item", "Quantity", f"Unit price ({money})", f"Total ({money})"],
            [[i["name"], i["quantity"], i["unit_price"], i["total"]] for i in order["items"]],
            [80, 25, 35, 35],
        ),
        Spacer(1, 3 * mm),
        _table(
            ["Money", money],
            [[name.replace("_", " "), value] for name, value in order["money"].items()],
            [80, 40],
        ),
        Paragraph("Delivery times", _STYLES["Heading2"]),
        _table(
            ["Moment", "UTC"],
            [[name.replace("_", " "), at] for name, at in order["times"].items() if at],
            [70, 70],
        ),
        Paragraph("Timeline", _STYLES["Heading2"]),
        _table(
            ["At", "By", "What", f"Amount ({money})", "Clauses"],
            [
                [e["at"], e["by"], e["event"], e["amount"] or "", ", ".join(e["clauses"])]
                for e in bundle["timeline"]
            ],
            [35, 22, 80, 20, 20],
        ),
        Paragraph("Payments", _STYLES["Heading2"]),
        _table(
            ["At", f"Amount ({money})", "Status", "Reference"],
            [[p["at"], p["amount"], p["status"], p["reference"]] for p in bundle["payments"]],
            [40, 30, 25, 75],
        ),
        Paragraph("Refunds already made", _STYLES["Heading2"]),
        _table(
            ["At", f"Amount ({money})", "To", "Status", "Reason"],
            [[r["at"], r["amount"], r["to"], r["status"], r["reason"]] for r in bundle["refunds"]],
            [35, 25, 25, 20, 70],
        ),
        _p(f"Refunded in total: {bundle['already_refunded']} {money}.", _BODY),
    ]
    for request in bundle["requests"]:
        story += _request_story(request, photos)
    policy = bundle["policy_version"]
    story += [
        PageBreak(),
        Paragraph("Policy accepted at checkout", _STYLES["Heading2"]),
        _p(
            f"Version {policy['label']}, in force from {policy['effective_from']}, accepted "
            f"with the order at {policy['accepted_at']}.",
            _BODY,
        ),
        *[_p(line) for line in policy["text"].splitlines() if line.strip()],
    ]
    buffer = io.BytesIO()
    document = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=f"Chargeback evidence, order #{order['id']}",
        author="lojix",
        leftMargin=15 * mm,
        rightMargin=15 * mm,
    )
    document.build(story)
    return buffer.getvalue()


def _request_story(request: dict, photos: dict[int, bytes]) -> list:
    story = [
        Paragraph(f"Refund request #{request['id']}", _STYLES["Heading2"]),
        _p(
            f"{request['reason']}, {request['status']}, submitted {request['submitted_at']}. "
            f"{request['description']} "
            + (f"Decided: {request['decided_amount']}. " if request["decided_amount"] else "")
            + request["explanation"],
            _BODY,
        ),
        _table(
            ["At", "By", "What", "Clauses"],
            [[e["at"], e["by"], e["event"], ", ".join(e["clauses"])] for e in request["timeline"]],
            [35, 20, 100, 20],
        ),
        Spacer(1, 3 * mm),
        _table(
            ["At", "From", "Message"],
            [[m["at"], m["from"], m["body"]] for m in request["messages"]],
            [35, 25, 115],
        ),
    ]
    for photo in request["photos"]:
        story.append(
            _p(f"Photo {photo['name']} ({photo['width']}x{photo['height']}), {photo['at']}")
        )
        data = photos.get(photo["id"])
        if data:
            image = Image(io.BytesIO(data))
            image._restrictSize(80 * mm, 80 * mm)
            story.append(image)
    return story
