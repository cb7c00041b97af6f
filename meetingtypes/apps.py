from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MeetingTypesConfig(AppConfig):
    name = "meetingtypes"
    verbose_name = _("Meeting types")
