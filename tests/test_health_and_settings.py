"""The operational contracts: /healthz, settings from the environment, a clean deploy check."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError
from django.urls import reverse

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_healthz_reports_database_cache_and_broker(client):
    response = client.get(reverse("healthz"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"] == "ok"
    assert body["cache"] == "ok"
    assert body["broker"] in {"ok", "in-process"}


@pytest.mark.django_db
def test_healthz_answers_503_when_the_database_is_down(client, monkeypatch):
    from tsp import health

    def broken_cursor(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", broken_cursor)
    response = client.get(reverse("healthz"))
    assert response.status_code == 503
    assert response.json()["database"] == "error"


@pytest.mark.django_db
def test_healthz_reports_a_broker_that_cannot_be_reached(client, monkeypatch, settings):
    from tsp import health

    monkeypatch.setattr(settings, "CELERY_TASK_ALWAYS_EAGER", False)

    def unreachable():
        raise ConnectionError("no broker")

    monkeypatch.setattr(health, "_broker", unreachable)
    response = client.get(reverse("healthz"))
    assert response.status_code == 200  # pages still work without the broker
    assert response.json()["broker"] == "error"


def _run_django(env_overrides: dict, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL", "CELERY_", "EMAIL_"))}
    env.update(env_overrides)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def _setting(env_overrides: dict, expression: str) -> str:
    code = f"from django.conf import settings; print(repr(({expression})))"
    result = _run_django({"DEBUG": "1", **env_overrides}, "shell", "--no-imports", "-c", code)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_sqlite_is_used_when_database_url_is_unset():
    assert _setting({}, "settings.DATABASES['default']['ENGINE']") == "'django.db.backends.sqlite3'"


def test_postgresql_is_used_when_database_url_is_set():
    engine = _setting({"DATABASE_URL": "postgres://u:p@db.example:5432/tsp"}, "settings.DATABASES['default']['ENGINE']")
    assert engine == "'django.db.backends.postgresql'"


def test_tasks_run_in_process_without_a_broker_and_through_redis_with_one():
    assert _setting({}, "settings.CELERY_TASK_ALWAYS_EAGER") == "True"
    with_redis = {"REDIS_URL": "redis://127.0.0.1:6379/3"}
    assert _setting(with_redis, "settings.CELERY_TASK_ALWAYS_EAGER, settings.CELERY_BROKER_URL") == (
        "(False, 'redis://127.0.0.1:6379/3')"
    )


def test_email_url_configures_smtp():
    value = _setting(
        {"EMAIL_URL": "submission://mailer:s%40cret@smtp.example.com"},
        "settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_HOST_USER, "
        "settings.EMAIL_HOST_PASSWORD, settings.EMAIL_USE_TLS",
    )
    assert value == (
        "('django.core.mail.backends.smtp.EmailBackend', 'smtp.example.com', 587, 'mailer', 's@cret', True)"
    )


def test_production_refuses_to_start_without_a_secret_key():
    result = _run_django({"DEBUG": "0", "SECRET_KEY": ""}, "check")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_deploy_check_is_clean_with_production_settings():
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
        "ALLOWED_HOSTS": "schedule.example.com",
        "TOKEN_ENCRYPTION_KEYS": "l0YE2ZC1SJh-Zz8yZQJc1Q3pVIUQUuN9iB9vV9dVq3E=",
        "REDIS_URL": "redis://cache.example:6379/0",
    }
    result = _run_django(production, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNINGS" not in result.stdout + result.stderr


def test_deploy_check_warns_of_a_cache_each_process_keeps_to_itself():
    """Without Redis the cache is each process's own: a second gunicorn worker (or web node) would not
    see the bookings the first took in its cached pages, nor count the same client's requests."""
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
        "ALLOWED_HOSTS": "schedule.example.com",
        "TOKEN_ENCRYPTION_KEYS": "l0YE2ZC1SJh-Zz8yZQJc1Q3pVIUQUuN9iB9vV9dVq3E=",
    }
    result = _run_django(production, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode != 0
    assert "bookings.W001" in result.stdout + result.stderr
    assert "LocMemCache" in result.stdout + result.stderr


def test_deploy_check_demands_token_encryption_keys():
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
        "ALLOWED_HOSTS": "schedule.example.com",
    }
    result = _run_django(production, "check", "--deploy")
    assert result.returncode != 0
    assert "integrations.E001" in result.stdout + result.stderr


def test_the_zoom_sandbox_is_off_and_unreachable_in_production():
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "a-long-random-production-secret-key-0123456789-abcdefghijklmnop",
        "ALLOWED_HOSTS": "schedule.example.com",
    }
    code = (
        "from django.conf import settings; from django.urls import resolve, Resolver404\n"
        "try:\n    resolve('/sandbox/zoom/oauth/authorize'); print('reachable')\n"
        "except Resolver404:\n    print('unreachable', settings.PROVIDER_SANDBOX, settings.ZOOM_OAUTH_BASE_URL)"
    )
    result = _run_django(production, "shell", "--no-imports", "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "unreachable False https://zoom.us"


def test_the_provider_sandbox_is_on_for_the_local_demo_only_for_providers_without_real_credentials():
    assert _setting({}, "settings.PROVIDER_SANDBOX, settings.ZOOM_API_BASE_URL, settings.GOOGLE_TOKEN_URL") == (
        "(True, 'http://127.0.0.1:8000/sandbox/zoom/v2', 'http://127.0.0.1:8000/sandbox/google/token')"
    )
    # A provider with its own app always talks to its configured URLs, the others to their fakes.
    real_zoom = {"ZOOM_CLIENT_ID": "real-id", "ZOOM_CLIENT_SECRET": "real-secret"}
    assert _setting(real_zoom, "settings.ZOOM_API_BASE_URL, settings.MICROSOFT_API_BASE_URL") == (
        "('https://api.zoom.us/v2', 'http://127.0.0.1:8000/sandbox/microsoft/v1.0')"
    )
    every_app = {
        **real_zoom,
        "GOOGLE_CLIENT_ID": "g",
        "GOOGLE_CLIENT_SECRET": "gs",
        "MICROSOFT_CLIENT_ID": "m",
        "MICROSOFT_CLIENT_SECRET": "ms",
    }
    assert _setting(every_app, "settings.PROVIDER_SANDBOX, settings.GOOGLE_TOKEN_URL") == (
        "(False, 'https://oauth2.googleapis.com/token')"
    )
    # Without DEBUG (production) nothing is sandboxed unless asked for.
    production = {"DEBUG": "0", "SECRET_KEY": "x" * 50, "ALLOWED_HOSTS": "example.com"}
    assert _setting(production, "settings.PROVIDER_SANDBOX, settings.SANDBOXED_PROVIDERS") == "(False, [])"


@pytest.mark.parametrize("variable", ["DEBUG", "EMAIL_OUTBOX", "PROVIDER_SANDBOX"])
def test_a_mistyped_yes_or_no_stops_the_start_instead_of_meaning_no(variable):
    result = _run_django({"DEBUG": "1", variable: "ture"}, "check")
    assert result.returncode != 0
    assert f"{variable}='ture' is not a yes/no value" in result.stderr


def test_yes_and_no_are_understood_in_their_usual_spellings():
    assert _setting({"DEBUG": "yes", "PROVIDER_SANDBOX": "Off"}, "settings.DEBUG, settings.PROVIDER_SANDBOX") == (
        "(True, False)"
    )


def test_email_url_with_implicit_tls_and_a_refused_scheme():
    value = _setting(
        {"EMAIL_URL": "smtp://mailer:pw@smtp.example.com:465?ssl=1"},
        "settings.EMAIL_PORT, settings.EMAIL_USE_SSL, settings.EMAIL_USE_TLS",
    )
    assert value == "(465, True, False)"
    for url, says in [("smtps://mailer:pw@smtp.example.com", "smtp://…:465?ssl=1"), ("ftp://x", "EMAIL_URL: use")]:
        result = _run_django({"DEBUG": "1", "EMAIL_URL": url}, "check")
        assert result.returncode != 0 and says in result.stderr, result.stderr
