from django.conf import settings
from django.core.checks import Warning, register

# Caches whose entries another process cannot see (or, for files, another machine).
_NOT_SHARED = {
    "django.core.cache.backends.locmem.LocMemCache",
    "django.core.cache.backends.dummy.DummyCache",
    "django.core.cache.backends.filebased.FileBasedCache",
}


@register(deploy=True)
def shared_cache(app_configs, **kwargs):
    """The booking pages' cache versions and the per-IP limits live in the default cache: every web
    process (each gunicorn worker, every node) must see the same one, or a booking taken by one
    process leaves the others serving its time as free, and each process counts a client apart."""
    backend = settings.CACHES["default"]["BACKEND"]
    if backend not in _NOT_SHARED:
        return []
    return [
        Warning(
            f"The default cache ({backend.rsplit('.', 1)[-1]}) is not shared between processes: booking pages "
            "would show times already taken elsewhere, and the per-IP limits would count per process.",
            hint="Set REDIS_URL.",
            id="bookings.W001",
        )
    ]
