"""Every login (allauth's, and the one after accepting an invitation) records the browser's locale."""

from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver

from tsp.formatting import browser_locale

from .services import remember_locale


@receiver(user_logged_in, dispatch_uid="members.remember_locale")
def remember_browser_locale(sender, request, user, **kwargs):
    if request is not None:
        remember_locale(user=user, locale=browser_locale(request))
