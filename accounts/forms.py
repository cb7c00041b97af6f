from django import forms
from django.utils.translation import gettext_lazy as _

from members.timezones import time_zone_choices

from .services import create_organization_with_admin


class OrganizationSignupForm(forms.Form):
    """Extra fields on allauth's sign-up form: the organization the new user will administer."""

    display_name = forms.CharField(label=_("Your name"), max_length=120)
    organization_name = forms.CharField(label=_("Organization name"), max_length=120)
    time_zone = forms.ChoiceField(
        label=_("Your time zone"),
        choices=time_zone_choices,
        initial="UTC",
        help_text=_("Working hours and times on your dashboard use this zone."),
    )

    field_order = ["display_name", "organization_name", "email", "password1", "password2", "time_zone"]

    def clean_display_name(self):
        value = self.cleaned_data["display_name"].strip()
        if not value:
            raise forms.ValidationError(_("Please enter your name."))
        return value

    def clean_organization_name(self):
        value = self.cleaned_data["organization_name"].strip()
        if not value:
            raise forms.ValidationError(_("Please enter your organization's name."))
        return value

    def signup(self, request, user) -> None:
        create_organization_with_admin(
            user=user,
            organization_name=self.cleaned_data["organization_name"],
            display_name=self.cleaned_data["display_name"],
            time_zone=self.cleaned_data["time_zone"],
        )
