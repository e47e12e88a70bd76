"""Version 1 of the policy: the published texts and the defaults of D-6."""

import datetime as dt
from pathlib import Path

from django.db import migrations

TEXTS = Path(__file__).resolve().parent.parent / "policy_texts"


def create_version_1(apps, schema_editor):
    PolicyVersion = apps.get_model("orders", "PolicyVersion")
    text = "\n\n".join(
        (TEXTS / name).read_text(encoding="utf-8").strip()
        for name in ("lojix-refund-policy.txt", "kajet-cancellation-policy.txt")
    )
    PolicyVersion.objects.get_or_create(
        label="1",
        defaults={
            "effective_from": dt.datetime(2024, 11, 20, tzinfo=dt.UTC),
            "text": text,
            "summary_of_changes": "First version: lojix Refund Policy of 20 November 2024 under "
            "Kajet's Cancellation Policy of 12 October 2023.",
        },
    )


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]
    operations = [migrations.RunPython(create_version_1, migrations.RunPython.noop)]
