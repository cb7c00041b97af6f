from django.conf import settings
from django.core.checks import Error, Warning, register


@register(deploy=True)
def provider_settings(app_configs, **kwargs):
    problems = []
    if not settings.TOKEN_ENCRYPTION_KEYS:
        problems.append(
            Error(
                "TOKEN_ENCRYPTION_KEYS is not set: provider tokens can't be stored.",
                hint="Generate one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())'",
                id="integrations.E001",
            )
        )
    if settings.PROVIDER_SANDBOX:
        problems.append(
            Warning(
                "PROVIDER_SANDBOX is on: the provider fakes (Zoom, Google, Microsoft) are reachable on this site.",
                id="integrations.W001",
            )
        )
    return problems
