from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class BookingsConfig(AppConfig):
    name = "bookings"
    verbose_name = _("Bookings")

    def ready(self) -> None:
        # Imported for what importing does: registering the deploy checks, connecting the receivers
        # that forget what the public pages cached.
        from . import checks, public_lookups  # noqa: F401
