"""The escalation form (L-8.1): a statement and photos, prepared like a refund claim's."""

from django import forms

from refunds.forms import MAX_TEXT_LENGTH, HeldPhotosForm, PhotosField
from refunds.services.evidence import MAX_PHOTOS


class EscalationForm(HeldPhotosForm):
    """Ask a supervisor to review a decision: why, and photos if they help (kept, by id, when
    the form is refused)."""

    statement = forms.CharField(
        label="Why you disagree",
        max_length=MAX_TEXT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    photos = PhotosField(label="Photos", help_text=f"Up to {MAX_PHOTOS} photos.")
