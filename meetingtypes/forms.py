from django import forms
from django.core.validators import URLValidator
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from integrations import registry
from members.models import TeamMember
from tsp.validators import single_line_name

from .models import MeetingType

NEEDS_DETAIL = {MeetingType.Location.PHONE, MeetingType.Location.IN_PERSON, MeetingType.Location.CUSTOM_LINK}


class MeetingTypeForm(forms.ModelForm):
    hosts = forms.ModelMultipleChoiceField(
        label=_("Hosts"),
        queryset=TeamMember.objects.none(),
        widget=forms.CheckboxSelectMultiple,
        help_text=_(
            "Who can be booked. Their order below decides ties and whose video account hosts a collective meeting."
        ),
    )

    class Meta:
        model = MeetingType
        fields = [
            "name",
            "slug",
            "description",
            "duration_minutes",
            "location",
            "location_detail",
            "assignment",
            "hosts",
            "buffer_before_minutes",
            "buffer_after_minutes",
            "minimum_notice_minutes",
            "booking_window_days",
            "slot_interval_minutes",
            "daily_limit_per_host",
            "reminder_minutes_before",
            "show_branding",
            "is_active",
        ]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}

    def __init__(self, *args, organization, **kwargs):
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["name"].validators.append(single_line_name)
        self.fields["hosts"].queryset = TeamMember.objects.filter(organization=organization, is_active=True)
        self.fields["hosts"].label_from_instance = lambda m: f"{m.display_name} ({m.time_zone})"
        self.fields["slug"].required = False
        self.fields["slug"].help_text = _("Part of the booking link. Empty: made from the name.")
        if self.instance.pk:
            self.initial["hosts"] = list(self.instance.host_links.values_list("member_id", flat=True))
        self.fields["location"].choices = choices = self._location_choices()
        if self.initial.get("location") not in {value for value, _label in choices}:
            self.initial["location"] = choices[0][0]  # the default (Zoom) isn't set up here

    def _location_choices(self) -> list[tuple[str, str]]:
        """Video locations only for providers members can connect on this site. A saved type's
        location stays selectable, said to be unavailable, so that saving other changes keeps it
        (its bookings fall back along the chain meanwhile)."""
        offered = {provider.location for provider in registry.offered()}
        saved = self.instance.location if self.instance.pk else None
        choices = []
        for value, label in MeetingType.Location.choices:
            provider = registry.for_location(value)
            if provider is None or value in offered:
                choices.append((value, label))
            elif value == saved:
                choices.append((value, _("%(location)s (not set up on this site)") % {"location": label}))
        return choices

    def clean_slug(self):
        typed = slugify(self.cleaned_data.get("slug") or "")[:60]
        slug = typed or slugify(self.cleaned_data.get("name") or "")[:50]
        if not slug:
            raise forms.ValidationError(_("Please enter a URL name made of letters, digits or dashes."))
        if slug in {"book", "slots.json"}:
            raise forms.ValidationError(_("This URL name is reserved."))
        if typed:
            if self._slug_taken(slug):
                raise forms.ValidationError(_("Another meeting type already uses this URL name."))
            return slug
        # Made from the name: pick the first free variant instead of bothering the admin.
        candidate, n = slug, 1
        while self._slug_taken(candidate):
            n += 1
            candidate = f"{slug}-{n}"
        return candidate

    def _slug_taken(self, slug: str) -> bool:
        others = MeetingType.objects.filter(organization=self.organization, slug=slug).exclude(pk=self.instance.pk)
        return others.exists()

    def clean(self):
        cleaned = super().clean()
        hosts = cleaned.get("hosts")
        if cleaned.get("assignment") == MeetingType.Assignment.ONE_PERSON and hosts is not None and len(hosts) != 1:
            self.add_error("hosts", _("Choose exactly one host for a one-person meeting type."))
        location, detail = cleaned.get("location"), (cleaned.get("location_detail") or "").strip()
        if location in NEEDS_DETAIL and not detail:
            self.add_error("location_detail", _("Please enter the phone number, address or link."))
        if location == MeetingType.Location.CUSTOM_LINK and detail:
            try:
                URLValidator(schemes=["https", "http"])(detail)
            except forms.ValidationError:
                self.add_error("location_detail", _("Please enter a full link starting with https://."))
        cleaned["location_detail"] = detail
        return cleaned
