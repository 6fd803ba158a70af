"""marshmallow fields for what people type, shared by the bridge and the mini-program API.

``CleanString`` folds full-width characters and stray whitespace (``app.text.clean_text``)
before length checks run; ``PhoneField`` turns any accepted way of writing a phone number
into an ``app.phones.Phone`` (stored as ``.e164``, extension in ``.extension``).
"""
from __future__ import annotations

from marshmallow import ValidationError, fields

from app import phones
from app.text import clean_text


class CleanString(fields.String):
    """A string as NFKC text, trimmed; ``multiline=True`` keeps line breaks (descriptions)."""

    def __init__(self, *args, multiline: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.multiline = multiline

    def _deserialize(self, value, attr, data, **kwargs):
        return clean_text(super()._deserialize(value, attr, data, **kwargs), multiline=self.multiline)


class PhoneField(fields.String):
    """A phone number in any accepted form; loads to ``app.phones.Phone``, dumps as stored."""

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return phones.parse(text)
        except phones.PhoneError as exc:
            raise ValidationError(exc.message) from exc
