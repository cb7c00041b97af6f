"""Which client module serves which provider. Each module offers the functions of zoom/client.py."""

from types import ModuleType

from .models import Provider


def client_for(provider: str) -> ModuleType:
    if provider == Provider.ZOOM:
        from .zoom import client

        return client
    raise LookupError(f"no client for provider {provider!r}")
