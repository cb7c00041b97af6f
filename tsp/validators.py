"""Validators shared by the forms of every app."""

import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

# Control characters (newline, carriage return, tab, NUL, escape…) and Unicode's line and paragraph
# separators. Names go into email headers, where a line break ends the header (Django refuses to
# send it at all), into calendar files and onto pages; no real name holds one.
_NOT_IN_A_NAME = {"Cc", "Zl", "Zp"}


def single_line_name(value: str) -> None:
    if any(unicodedata.category(character) in _NOT_IN_A_NAME for character in value):
        raise ValidationError(
            _("A name can't contain line breaks, tabs or other control characters."), code="control_characters"
        )
