"""The video providers the product offers, in the order the fallback chain tries them.

Adding a provider: a folder integrations/<key>/ whose provider.py defines a VideoProvider, and one
line below. The member card, the /integrations/<key>/… URLs, the fallback chain, token refresh and
revocation and the permission matrix all read this registry.
"""

from importlib import import_module

from django.conf import settings

from .base import VideoProvider

PROVIDER_MODULES = [
    "integrations.zoom.provider",
    "integrations.google.provider",
    "integrations.microsoft.provider",
]

_providers: dict[str, VideoProvider] | None = None


def _load() -> dict[str, VideoProvider]:
    global _providers
    if _providers is None:
        loaded = {}
        for module_name in PROVIDER_MODULES:
            provider = import_module(module_name).provider
            loaded[provider.key] = provider
        _providers = loaded
    return _providers


def all_providers() -> list[VideoProvider]:
    """Every registered provider, in chain order (Zoom, Google Meet, Microsoft Teams)."""
    return list(_load().values())


def offered() -> list[VideoProvider]:
    """The providers members can connect on this site: those with an app (a client id) here."""
    return [provider for provider in all_providers() if is_configured(provider)]


def is_configured(provider: VideoProvider) -> bool:
    return bool(getattr(settings, f"{provider.settings_prefix}_CLIENT_ID", ""))


def get(key: str) -> VideoProvider:
    """The provider named `key`; LookupError when there is none."""
    try:
        return _load()[key]
    except KeyError:
        raise LookupError(f"no video provider {key!r}") from None


def for_location(location: str) -> VideoProvider | None:
    """The provider a meeting type's location asks for (None for phone, in person, a custom link)."""
    return next((provider for provider in all_providers() if provider.location == location), None)


def provider_choices() -> list[tuple[str, str]]:
    """Choices of the models' provider fields (a callable, so a new provider needs no migration)."""
    return [(provider.key, provider.meeting_name) for provider in all_providers()]


def register(provider: VideoProvider) -> None:
    """Add a provider at run time (tests register a dummy one to show the seam holds)."""
    _load()[provider.key] = provider


def unregister(key: str) -> None:
    _load().pop(key, None)
