"""The record of an `Idempotency-Key` is now written in the same transaction as the effect it
guards, so there is no `in_progress` row any more: every record holds a response."""

from django.db import migrations, models


def delete_claims_without_a_response(apps, schema_editor):
    # An in-progress claim belongs to a request that never stored its answer; without the row
    # its key can be retried at once instead of answering 409 for the rest of its 24 hours.
    IdempotencyRecord = apps.get_model("core", "IdempotencyRecord")
    IdempotencyRecord.objects.filter(response_status__isnull=True).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("core", "0003_outbox_message"),
    ]

    operations = [
        migrations.RunPython(delete_claims_without_a_response, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="idempotencyrecord",
            name="idempotency_record_completed_has_response",
        ),
        # Unapplied, the column comes back as "completed" for the rows that stay.
        migrations.AlterField(
            model_name="idempotencyrecord",
            name="status",
            field=models.CharField(
                choices=[("in_progress", "In progress"), ("completed", "Completed")],
                default="completed",
                max_length=12,
            ),
        ),
        migrations.RemoveField(
            model_name="idempotencyrecord",
            name="status",
        ),
        migrations.AlterField(
            model_name="idempotencyrecord",
            name="response_status",
            field=models.PositiveSmallIntegerField(),
        ),
        migrations.AlterField(
            model_name="idempotencyrecord",
            name="completed_at",
            field=models.DateTimeField(help_text="When the response was stored."),
        ),
    ]
