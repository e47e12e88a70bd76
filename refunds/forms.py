"""Refund request forms: shape, and photos prepared as the services would (refunds.photos) so a
bad photo is a form error on the form and on its preview. Whether a reason applies or a reply
is allowed is the services' decision (refunds.services), shown on these pages when they refuse."""

from django import forms

from core.display import when_text
from core.errors import DomainError
from refunds.models import RefundRequest
from refunds.photos import PHOTO_FORMATS, photo_prepare
from refunds.policy import Reason
from refunds.services.evidence import MAX_PHOTOS, photos_check_count

MAX_TEXT_LENGTH = 4000
PHOTO_TYPES = ",".join(PHOTO_FORMATS.values())


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class PhotosField(forms.FileField):
    """Up to MAX_PHOTOS files, each prepared by refunds.photos.photo_prepare (decoded, stripped,
    capped, re-encoded); cleaned to a list of `Photo`. A refusal is a field error naming the file
    and the reason; the services count the request's photos again when they store them."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": PHOTO_TYPES}))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data] if data else []
        uploads = [super(PhotosField, self).clean(upload, initial) for upload in files]
        try:
            photos_check_count(adding=len(uploads), already=0)
            return [photo_prepare(upload) for upload in uploads]
        except DomainError as error:
            raise forms.ValidationError(error.detail, code=error.code) from error


class HeldPhotosForm(forms.Form):
    """A form with `photos` (new uploads) and `held_photos`: the ids of the buyer's photos
    already kept for this order (HeldPhoto, given as `held_photos=`), carried in hidden fields
    so a preview or a refusal never asks for them again. Only those ids are accepted, and new
    and held photos count together towards MAX_PHOTOS."""

    held_photos = forms.TypedMultipleChoiceField(
        coerce=int, required=False, widget=forms.MultipleHiddenInput
    )

    def __init__(self, *args, held_photos=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.held_photo_rows = list(held_photos)
        self.fields["held_photos"].choices = [(photo.pk, str(photo.pk)) for photo in held_photos]
        self.fields["held_photos"].error_messages["invalid_choice"] = (
            "A photo you chose is no longer kept; choose it again."
        )

    def clean(self):
        cleaned = super().clean()
        if "photos" in cleaned and "held_photos" in cleaned:
            try:
                photos_check_count(
                    adding=len(cleaned["photos"]), already=len(cleaned["held_photos"])
                )
            except DomainError as error:
                self.add_error("photos", forms.ValidationError(error.detail, code=error.code))
        return cleaned


class RefundRequestForm(HeldPhotosForm):
    """Report a problem: a reason, the items concerned (partial reasons), a description, photos
    and where the money should go. One `qty_<order item id>` field per order line.

    Photos chosen before are carried as `held_photos` (HeldPhotosForm).
    `closed_reasons` maps a reason whose reporting window has closed (L-5.1) to when it closed:
    choosing one is a field error."""

    reason = forms.ChoiceField(label="What went wrong?", choices=list(Reason.LABELS.items()))
    description = forms.CharField(
        label="Describe the problem",
        required=False,
        max_length=MAX_TEXT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    photos = PhotosField(
        label="Photos",
        help_text=f"Up to {MAX_PHOTOS} photos (JPEG, PNG, WebP or GIF, 8 MB each).",
    )
    preferred_method = forms.ChoiceField(
        label="Where should a refund go?",
        choices=[
            (
                RefundRequest.Method.ORIGINAL,
                "Back where it came from (your card, and account "
                "credit for what you paid with credit)",
            ),
            (RefundRequest.Method.ACCOUNT_CREDIT, "All as account credit, available at once"),
        ],
        initial=RefundRequest.Method.ORIGINAL,
        widget=forms.RadioSelect,
    )

    def __init__(self, *args, order_items, closed_reasons=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.order_items = list(order_items)
        self.closed_reasons = closed_reasons or {}
        for item in self.order_items:
            self.fields[self.quantity_name(item)] = forms.TypedChoiceField(
                label=f"How many {item.name}?",
                choices=[(n, str(n)) for n in range(item.quantity + 1)],
                coerce=int,
                initial=0,
                required=False,
                empty_value=0,
            )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"]
        closed_at = self.closed_reasons.get(reason)
        if closed_at is not None:
            raise forms.ValidationError(
                f"The window for reporting this closed at {when_text(closed_at)} (L-5.1).",
                code="report_window_closed",
            )
        return reason

    @staticmethod
    def quantity_name(item) -> str:
        return f"qty_{item.pk}"

    def item_rows(self):
        """(order item, its bound quantity field) pairs, in order, for the item picker."""
        return [(item, self[self.quantity_name(item)]) for item in self.order_items]

    def picked_items(self) -> list[tuple[int, int]]:
        """(order item id, quantity) for every line with a quantity above 0."""
        quantities = {
            item.pk: self.cleaned_data[self.quantity_name(item)] for item in self.order_items
        }
        return [(item_id, quantity) for item_id, quantity in quantities.items() if quantity]


class ReplyForm(HeldPhotosForm):
    """The buyer writes on a request, with photos if they like (kept on a refusal)."""

    body = forms.CharField(
        label="Your message",
        max_length=MAX_TEXT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    photos = PhotosField(label="Add photos", help_text=f"Up to {MAX_PHOTOS} photos per request.")


class DeductionDisputeForm(forms.Form):
    """The restaurant's note disputing a refund deduction (L-9, K-DR)."""

    note = forms.CharField(
        label="Why this refund was not your restaurant's error",
        max_length=MAX_TEXT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 4}),
    )


class VerificationForm(forms.Form):
    """The restaurant's answer to support's question about a claim."""

    note = forms.CharField(
        label="Your answer to support",
        max_length=MAX_TEXT_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
