from django import forms
from django.utils.translation import gettext_lazy as _

from members.timezones import TimeZoneField
from tsp.formatting import browser_locale
from tsp.validators import single_line_name

from .branding import clean_accent_colour, process_logo
from .services import create_organization_with_admin


class OrganizationSignupForm(forms.Form):
    """Extra fields on allauth's sign-up form: the organization the new user will administer."""

    display_name = forms.CharField(label=_("Your name"), max_length=120, validators=[single_line_name])
    organization_name = forms.CharField(label=_("Organization name"), max_length=120, validators=[single_line_name])
    time_zone = TimeZoneField(
        label=_("Your time zone"),
        browser_zone="preselect",
        help_text=_("Working hours and times on your dashboard use this zone."),
    )

    field_order = ["display_name", "organization_name", "email", "password1", "password2", "time_zone"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.is_bound:  # shown again after an error: keep the zone the person chose
            self.fields["time_zone"].widget.attrs.pop("data-tz-detect", None)

    def signup(self, request, user) -> None:
        create_organization_with_admin(
            user=user,
            organization_name=self.cleaned_data["organization_name"],
            display_name=self.cleaned_data["display_name"],
            time_zone=self.cleaned_data["time_zone"],
            locale=browser_locale(request) or "",
        )


class OrganizationForm(forms.Form):
    """An admin's settings for the organization: its name and its look on booking pages."""

    name = forms.CharField(
        label=_("Organization name"),
        max_length=120,
        validators=[single_line_name],
        help_text=_("Shown to clients on booking pages and in emails. Your booking links stay the same."),
    )
    logo = forms.FileField(
        label=_("Logo"),
        required=False,
        help_text=_("PNG, JPEG or WebP, at most 1 MB. Shown on booking pages of meeting types that ask for it."),
        widget=forms.ClearableFileInput(attrs={"accept": "image/png,image/jpeg,image/webp"}),
    )
    remove_logo = forms.BooleanField(label=_("Remove the logo"), required=False)
    accent_color = forms.CharField(
        label=_("Accent colour"),
        required=False,
        max_length=7,
        help_text=_(
            "For buttons and available days, as #rrggbb; it must be dark enough to read on white. "
            "Empty: the default blue."
        ),
        widget=forms.TextInput(attrs={"placeholder": "#4338ca", "pattern": "#[0-9a-fA-F]{6}", "size": 9}),
    )

    def __init__(self, *args, has_logo: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        if not has_logo:
            del self.fields["remove_logo"]

    def clean_logo(self):
        uploaded = self.cleaned_data.get("logo")
        return process_logo(uploaded) if uploaded else None

    def clean_accent_color(self):
        return clean_accent_colour(self.cleaned_data.get("accent_color", ""))
