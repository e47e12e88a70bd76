"""Version 1 of the policy: the published texts and the defaults of D-6 (the model's defaults).

Used by the data migration, and by tests whose database is flushed between tests.
"""

import datetime as dt
from pathlib import Path

TEXTS = Path(__file__).resolve().parent / "policy_texts"


def seed_version_1(policy_version_model) -> None:
    """Create version 1, published (K-UP), unless it exists."""
    text = "\n\n".join(
        (TEXTS / name).read_text(encoding="utf-8").strip()
        for name in ("lojix-refund-policy.txt", "kajet-cancellation-policy.txt")
    )
    effective_from = dt.datetime(2024, 11, 20, tzinfo=dt.UTC)
    policy_version_model.objects.get_or_create(
        label="1",
        defaults={
            "effective_from": effective_from,
            "text": text,
            "summary_of_changes": "First version: the lojix Refund Policy of 20 November 2024 "
            "under Kajet's Cancellation Policy of 12 October 2023.",
            # The data migration 0002 runs before the review fields exist; 0010 publishes the
            # version it created.
            **(_published(effective_from) if _has_field(policy_version_model, "status") else {}),
        },
    )


def _has_field(model, name: str) -> bool:
    return any(field.name == name for field in model._meta.get_fields())


def _published(effective_from: dt.datetime) -> dict:
    """Published, and in force long before an announcement would go out (K-UP)."""
    return {"status": "published", "announced_at": effective_from}
