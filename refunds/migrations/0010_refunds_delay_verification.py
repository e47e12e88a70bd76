from django.conf import settings
from django.db import migrations, models


def backfill_restaurant_asked_at(apps, schema_editor):
    """Requests already waiting on a restaurant: the clock starts when support last asked."""
    RefundRequest = apps.get_model("refunds", "RefundRequest")
    RefundRequestEvent = apps.get_model("refunds", "RefundRequestEvent")
    last_asked = (
        RefundRequestEvent.objects.filter(request=models.OuterRef("pk"), name="ask_restaurant")
        .order_by("-created_at")
        .values("created_at")[:1]
    )
    RefundRequest.objects.filter(status="awaiting_restaurant").update(
        restaurant_asked_at=models.Subquery(last_asked)
    )


class Migration(migrations.Migration):

    dependencies = [
        ('refunds', '0009_duplicate_charge_cancelled'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='refundrequest',
            name='restaurant_asked_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name='refundrequest',
            index=models.Index(condition=models.Q(('status', 'awaiting_restaurant')), fields=['restaurant_asked_at'], name='refund_request_awaiting_rest'),
        ),
        migrations.RunPython(backfill_restaurant_asked_at, migrations.RunPython.noop),
    ]
