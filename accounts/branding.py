"""An organization's logo and accent colour, as shown on its booking pages.

Logos are decoded and written out again by Pillow, so what we store and serve is always a plain
PNG, JPEG or WebP of bounded size with no metadata, whatever bytes were uploaded (no SVG: it can
carry scripts). Accent colours must stay readable as text on white and on their own light tint.
"""

import io
import re
import secrets
import warnings

from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.utils.translation import gettext as _
from PIL import Image, UnidentifiedImageError

MAX_LOGO_BYTES = 1024 * 1024
MAX_LOGO_SOURCE_PIXELS = 4000 * 4000
# Stored logos are scaled down to fit this box: plenty for a sharp logo on high-density screens.
LOGO_BOX = (1200, 480)
LOGO_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
LOGO_CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
LOGO_NAME = re.compile(r"[A-Za-z0-9_-]{20,40}\.(png|jpg|webp)")

MIN_TEXT_CONTRAST = 4.5  # WCAG 2 AA for normal text
_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_TINT_SHARE = 0.08  # how much of the accent is in its light tint (backgrounds of available days)


def random_logo_name(extension: str) -> str:
    """Unguessable, unique per upload: a new logo never reuses an old (cached) address."""
    return f"{secrets.token_urlsafe(18)}.{extension}"


def process_logo(uploaded) -> ContentFile:
    """Check an uploaded logo and return it re-encoded; raise ValidationError otherwise."""
    if uploaded.size > MAX_LOGO_BYTES:
        raise ValidationError(_("The logo must be at most 1 MB."), code="logo_too_big")
    not_an_image = ValidationError(_("Upload a PNG, JPEG or WebP image."), code="logo_format")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            uploaded.seek(0)
            image = Image.open(uploaded)
            if image.format not in LOGO_FORMATS:
                raise not_an_image
            width, height = image.size
            if width * height > MAX_LOGO_SOURCE_PIXELS:
                raise ValidationError(_("The logo must be at most 4000 × 4000 pixels."), code="logo_too_large")
            image.verify()
            # verify() leaves the image unusable: open it again to decode the pixels.
            uploaded.seek(0)
            image = Image.open(uploaded)
            image.load()
    except ValidationError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning):
        raise not_an_image from None
    extension = LOGO_FORMATS[image.format]
    if image.format == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    elif image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
        image = image.convert("RGBA")
    image.thumbnail(LOGO_BOX)
    # Pillow writes comments, EXIF and ICC profiles it read back out; keep only what drawing needs.
    image.info = {key: value for key, value in image.info.items() if key == "transparency"}
    out = io.BytesIO()
    save_options = {"quality": 90} if extension in ("jpg", "webp") else {"optimize": True}
    pillow_format = {extension: name for name, extension in LOGO_FORMATS.items()}[extension]
    image.save(out, format=pillow_format, **save_options)
    return ContentFile(out.getvalue(), name=f"logo.{extension}")


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _luminance(rgb: tuple[int, int, int]) -> float:
    r, g, b = (_channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def contrast_ratio(a: str, b: str) -> float:
    la, lb = sorted((_luminance(_rgb(a)), _luminance(_rgb(b))), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def tint(colour: str) -> str:
    """The accent mixed into white: the background behind accent-coloured text."""
    r, g, b = (round(255 - (255 - v) * _TINT_SHARE) for v in _rgb(colour))
    return f"#{r:02x}{g:02x}{b:02x}"


def clean_accent_colour(value: str) -> str:
    """'#RRGGBB' readable on white and on its own tint, lower-cased; '' means the default colour."""
    value = (value or "").strip()
    if not value:
        return ""
    if not _HEX_COLOUR.fullmatch(value):
        raise ValidationError(_("Enter a colour as # and six hex digits, e.g. #1d4ed8."), code="colour_format")
    value = value.lower()
    worst = min(contrast_ratio(value, "#ffffff"), contrast_ratio(value, tint(value)))
    if worst < MIN_TEXT_CONTRAST:
        raise ValidationError(
            _(
                "%(colour)s is too light to read as text on white (contrast %(ratio).1f:1, at least 4.5:1 "
                "is needed). Choose a darker shade."
            ),
            params={"colour": value, "ratio": worst},
            code="colour_contrast",
        )
    return value
