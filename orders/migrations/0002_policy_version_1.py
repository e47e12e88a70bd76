from django.db import migrations

from orders.policy_seed import seed_version_1


def create_version_1(apps, schema_editor):
    seed_version_1(apps.get_model("orders", "PolicyVersion"))


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]
    operations = [migrations.RunPython(create_version_1, migrations.RunPython.noop)]
