"""Photos stored before refunds.photos existed are re-encoded like new uploads: metadata (EXIF,
GPS) gone, capped in size, with a thumbnail; the original file is deleted. A photo that cannot
be read or is over the pixel limit keeps its file and gets no thumbnail (the thumbnail URL then
answers 404). Not atomic: each row is saved with its new files before the old one is deleted."""

import uuid

from django.core.files.base import ContentFile
from django.db import migrations

from core.errors import InvalidInput
from refunds.photos import photo_prepare


def reencode_existing(apps, schema_editor):
    RefundEvidence = apps.get_model("refunds", "RefundEvidence")
    rows = RefundEvidence.objects.filter(thumbnail="").select_related("request")
    for evidence in rows.iterator(chunk_size=100):
        try:
            with evidence.file.open("rb") as upload:
                photo = photo_prepare(upload)
        except (OSError, InvalidInput):
            continue
        old_name = evidence.file.name
        stem = uuid.uuid4().hex
        evidence.file.save(f"{stem}.{photo.extension}", ContentFile(photo.content), save=False)
        evidence.thumbnail.save(
            f"{stem}-thumb.{photo.extension}", ContentFile(photo.thumbnail), save=False
        )
        evidence.content_type = photo.content_type
        evidence.size = photo.size
        evidence.width, evidence.height = photo.width, photo.height
        evidence.save(
            update_fields=["file", "thumbnail", "content_type", "size", "width", "height"]
        )
        evidence.file.storage.delete(old_name)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("refunds", "0005_refundevidence_thumbnail"),
    ]

    operations = [
        migrations.RunPython(reencode_existing, migrations.RunPython.noop, elidable=True),
    ]
