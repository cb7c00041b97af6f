from django import forms
from django.contrib.auth.password_validation import password_validators_help_text_html, validate_password
from django.utils.translation import gettext_lazy as _

from .models import TeamMember
from .timezones import time_zone_choices


class ProfileForm(forms.Form):
    """What every member may change about themselves."""

    display_name = forms.CharField(label=_("Name"), max_length=120)
    time_zone = forms.ChoiceField(label=_("Time zone"), choices=time_zone_choices, initial="UTC")

    def clean_display_name(self):
        value = self.cleaned_data["display_name"].strip()
        if not value:
            raise forms.ValidationError(_("Please enter a name."))
        return value


class MemberForm(ProfileForm):
    """What an admin may change about a member."""

    role = forms.ChoiceField(label=_("Role"), choices=TeamMember.Role.choices, initial=TeamMember.Role.MEMBER)
    field_order = ["display_name", "role", "time_zone"]


class NewMemberForm(MemberForm):
    email = forms.EmailField(
        label=_("Email"), max_length=254, help_text=_("They log in with this address; the invitation goes there.")
    )
    field_order = ["display_name", "email", "role", "time_zone"]


class SetPasswordForm(forms.Form):
    password1 = forms.CharField(
        label=_("Password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text=password_validators_help_text_html(),
    )
    password2 = forms.CharField(
        label=_("Password (again)"), widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args, user=None, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", _("The two passwords don't match."))
        elif first:
            try:
                validate_password(first, user=self.user)
            except forms.ValidationError as error:
                self.add_error("password1", error)
        return cleaned
