"""TeamSchedulerPro settings: every value comes from the environment.

Defaults are safe for a laptop (SQLite, in-process tasks, console email) and strict for production:
with DEBUG=0 a SECRET_KEY is required and `manage.py check --deploy` is clean.
"""

import os
from pathlib import Path

import dj_database_url
import dj_email_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    word = value.strip().lower()
    if word not in _TRUE | _FALSE:
        # A typo (DEBUG=ture) must not quietly turn into False (or True): refuse to start.
        raise ImproperlyConfigured(f"{name}={value!r} is not a yes/no value: use 1/0, true/false, yes/no or on/off.")
    return word in _TRUE


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = "insecure-development-key-never-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
# Absolute links in emails (invitations, manage links) need the public address of the site.
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.sites",
    "allauth",
    "allauth.account",
    "csp",
    "accounts",
    "members",
    "meetingtypes",
    "bookings",
    "integrations",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "tsp.headers.PermissionsPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Around everything that may read the database (sessions, the signed-in member, views): a 503
    # with Retry-After while it is unreachable, through the security headers above.
    "tsp.database_down.DatabaseDownMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "tsp.formatting.FormatLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.CurrentMemberMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Last, so it sees what views raise: our 403/404 pages also with DEBUG on.
    "tsp.error_pages.FriendlyErrorPagesMiddleware",
]

ROOT_URLCONF = "tsp.urls"
WSGI_APPLICATION = "tsp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.current_member",
                "csp.context_processors.nonce",
            ],
            "libraries": {"datetimes": "tsp.templatetags.datetimes"},
        },
    },
]

# Database: SQLite unless DATABASE_URL is set.
DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # The busy read's covering indexes (INCLUDE) serve PostgreSQL; SQLite, for development, builds
    # them without the extra columns, which is all it needs.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]

# Redis serves as cache and Celery broker when configured.
REDIS_URL = env("REDIS_URL")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "tsp.redis_cache.RedisCache",  # Django's, sharing its Redis clients (tsp/redis_cache.py)
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env("CACHE_KEY_PREFIX", "tsp"),
            "TIMEOUT": 300,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# The provider sandbox's state (integrations/sandbox): in Redis, when there is one, so that every
# web and worker process sees the same fake providers; kept apart from the page cache, which gets
# cleared. Without Redis, `make run` keeps it in files under SANDBOX_STATE_DIR, so that the tokens
# seed_demo's process issued for the demo accounts are known to the server's process too. Left
# unset (tests), each process has a sandbox of its own.
SANDBOX_STATE_DIR = env("SANDBOX_STATE_DIR")
if REDIS_URL:
    CACHES["provider_sandbox"] = {
        **CACHES["default"],
        "KEY_PREFIX": env("CACHE_KEY_PREFIX", "tsp") + "-sandbox",
        "TIMEOUT": None,
    }
elif SANDBOX_STATE_DIR:
    CACHES["provider_sandbox"] = {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": SANDBOX_STATE_DIR,
        "TIMEOUT": None,
    }
else:
    CACHES["provider_sandbox"] = {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "provider-sandbox",
        "TIMEOUT": None,
    }

# Celery: with no broker configured, tasks run in-process. They are always enqueued with
# transaction.on_commit (see tsp/tasks.py), so "eager" still means "after the commit".
CELERY_BROKER_URL = env("CELERY_BROKER_URL") or REDIS_URL
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = env_bool("CELERY_TASK_EAGER_PROPAGATES", False)
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "celery")
# Celery's Django support closes the database connections after every task unless they may be
# reused this many times; tsp/celery.py applies Django's own rules (DB_CONN_MAX_AGE, health checks)
# after each task instead, so this only bounds a connection's life in tasks as well.
CELERY_DB_REUSE_MAX = 1000
# Follow-up work (video meetings, emails) is one row per step; one sweep runs every step that is
# due. Retries wait RETRY_BASE_SECONDS, doubling, at most one sweep interval: a step is done within
# two sweeps of an outage ending. Budgets are in time (bookings/followup.py).
FOLLOW_UP_SWEEP_SECONDS = float(env("FOLLOW_UP_SWEEP_SECONDS", "60"))
RETRY_BASE_SECONDS = float(env("RETRY_BASE_SECONDS", "10"))
EMAIL_RETRY_HOURS = float(env("EMAIL_RETRY_HOURS", "24"))
VIDEO_RETRY_UNTIL_MINUTES_BEFORE = float(env("VIDEO_RETRY_UNTIL_MINUTES_BEFORE", "10"))
EMAIL_WAIT_FOR_LINK_SECONDS = float(env("EMAIL_WAIT_FOR_LINK_SECONDS", "300"))
CELERY_BEAT_SCHEDULE = {
    "booking-reminders": {"task": "bookings.tasks.send_due_reminders", "schedule": 300.0},
    "follow-up-sweep": {"task": "bookings.tasks.sweep_follow_ups", "schedule": FOLLOW_UP_SWEEP_SECONDS},
    "missed-revocations": {"task": "integrations.tasks.resend_missed_revocations", "schedule": 600.0},
    "calendar-sweep": {
        "task": "integrations.calendars.tasks.sweep_calendars",
        "schedule": float(env("CALENDAR_SWEEP_SECONDS", "60")),
    },
}

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "members:list"
LOGOUT_REDIRECT_URL = "account_login"

# django-allauth: email is the login; signing up creates an organization (accounts.forms).
SITE_ID = 1
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env("ACCOUNT_EMAIL_VERIFICATION", "mandatory")
ACCOUNT_CONFIRM_EMAIL_ON_GET = False
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_SIGNUP_FORM_CLASS = "accounts.forms.OrganizationSignupForm"
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[TeamSchedulerPro] "
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "signup": "20/m/ip",
    "reset_password": "20/m/ip,5/m/key",
}

# Invitation links for new team members.
MEMBER_INVITATION_TTL_HOURS = env_int("MEMBER_INVITATION_TTL_HOURS", 72)


# Email: EMAIL_URL (smtp://user:pass@host:25, submission://… for 587 with STARTTLS, ?ssl=1 for
# implicit TLS) or the individual EMAIL_* variables.
if env("EMAIL_URL").startswith("smtps:"):
    # dj-email-url reads smtps as STARTTLS, which port 465 does not speak: say what to write instead.
    raise ImproperlyConfigured("EMAIL_URL: write smtp://…:465?ssl=1 (implicit TLS) or submission://… (STARTTLS).")
if env("EMAIL_URL"):
    _email = dj_email_url.parse(env("EMAIL_URL"))
    if "EMAIL_BACKEND" not in _email:
        raise ImproperlyConfigured("EMAIL_URL: use smtp://, submission://, console://, file://, memory:// or dummy://.")
    EMAIL_BACKEND = _email["EMAIL_BACKEND"]
    EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
    EMAIL_PORT = _email["EMAIL_PORT"] or 25
    EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
    EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
    EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
    EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
    EMAIL_FILE_PATH = "/" + _email["EMAIL_FILE_PATH"] if _email["EMAIL_FILE_PATH"] else str(BASE_DIR / "var" / "mail")
elif env("EMAIL_HOST"):
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env("EMAIL_HOST")
    EMAIL_PORT = env_int("EMAIL_PORT", 25)
    EMAIL_HOST_USER = env("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
    EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
else:
    EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
# The development outbox (tsp/outbox.py): with DEBUG and no email server configured, sent emails
# are kept in var/outbox/ and shown at /dev/outbox/. Never with DEBUG off.
EMAIL_OUTBOX = DEBUG and env_bool("EMAIL_OUTBOX", not (env("EMAIL_URL") or env("EMAIL_HOST") or env("EMAIL_BACKEND")))
EMAIL_OUTBOX_DIR = env("EMAIL_OUTBOX_DIR", str(BASE_DIR / "var" / "outbox"))
if EMAIL_OUTBOX:
    EMAIL_BACKEND = "tsp.outbox.OutboxEmailBackend"
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 20)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "TeamSchedulerPro <no-reply@teamschedulerpro.local>")
SERVER_EMAIL = env("SERVER_EMAIL", DEFAULT_FROM_EMAIL)
SUPPORT_EMAIL = env("SUPPORT_EMAIL", "truf@comcast.net")

# Provider credentials (used by the integrations app). Tokens are encrypted with
# TOKEN_ENCRYPTION_KEYS: comma-separated Fernet keys, the first one encrypts.
TOKEN_ENCRYPTION_KEYS = env_list("TOKEN_ENCRYPTION_KEYS")
ZOOM_CLIENT_ID = env("ZOOM_CLIENT_ID")
ZOOM_CLIENT_SECRET = env("ZOOM_CLIENT_SECRET")
ZOOM_WEBHOOK_SECRET_TOKEN = env("ZOOM_WEBHOOK_SECRET_TOKEN")
ZOOM_OAUTH_BASE_URL = env("ZOOM_OAUTH_BASE_URL", "https://zoom.us").rstrip("/")
ZOOM_API_BASE_URL = env("ZOOM_API_BASE_URL", "https://api.zoom.us/v2").rstrip("/")
ZOOM_SCOPES = env("ZOOM_SCOPES", "meeting:write user:read")
GOOGLE_CLIENT_ID = env("GOOGLE_CLIENT_ID")
GOOGLE_CLIENT_SECRET = env("GOOGLE_CLIENT_SECRET")
GOOGLE_OAUTH_BASE_URL = env("GOOGLE_OAUTH_BASE_URL", "https://accounts.google.com").rstrip("/")
GOOGLE_TOKEN_URL = env("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token")
GOOGLE_REVOKE_URL = env("GOOGLE_REVOKE_URL", "https://oauth2.googleapis.com/revoke")
GOOGLE_API_BASE_URL = env("GOOGLE_API_BASE_URL", "https://www.googleapis.com").rstrip("/")
GOOGLE_USERINFO_URL = env("GOOGLE_USERINFO_URL", "https://openidconnect.googleapis.com/v1/userinfo")
GOOGLE_SCOPES = env("GOOGLE_SCOPES", "openid email https://www.googleapis.com/auth/calendar.events")
MICROSOFT_CLIENT_ID = env("MICROSOFT_CLIENT_ID")
MICROSOFT_CLIENT_SECRET = env("MICROSOFT_CLIENT_SECRET")
MICROSOFT_OAUTH_BASE_URL = env("MICROSOFT_OAUTH_BASE_URL", "https://login.microsoftonline.com/common").rstrip("/")
MICROSOFT_API_BASE_URL = env("MICROSOFT_API_BASE_URL", "https://graph.microsoft.com/v1.0").rstrip("/")
MICROSOFT_SCOPES = env("MICROSOFT_SCOPES", "openid email offline_access User.Read OnlineMeetings.ReadWrite")
# Members' calendars (integrations/calendars): the scopes asked for on top of the meeting scopes.
# Google: the list of calendars, and free/busy for the check at booking time (events are read and
# written under calendar.events, already granted for Meet). Microsoft: read and write events.
GOOGLE_CALENDAR_SCOPES = env(
    "GOOGLE_CALENDAR_SCOPES",
    "https://www.googleapis.com/auth/calendar.calendarlist.readonly https://www.googleapis.com/auth/calendar.freebusy",
)
MICROSOFT_CALENDAR_SCOPES = env("MICROSOFT_CALENDAR_SCOPES", "Calendars.ReadWrite")
# Push notifications need a URL the provider can reach over HTTPS: "auto" uses them when SITE_URL
# is https://, "on" always (the sandbox accepts http), "off" never. Without push each calendar is
# polled every CALENDAR_POLL_SECONDS; with push, a safety sync runs every CALENDAR_PUSH_RESYNC_SECONDS.
CALENDAR_PUSH = env("CALENDAR_PUSH", "auto")
CALENDAR_POLL_SECONDS = float(env("CALENDAR_POLL_SECONDS", "180"))
CALENDAR_PUSH_RESYNC_SECONDS = float(env("CALENDAR_PUSH_RESYNC_SECONDS", "21600"))
CALENDAR_SWEEP_SECONDS = float(env("CALENDAR_SWEEP_SECONDS", "60"))  # also in CELERY_BEAT_SCHEDULE
# How far ahead busy time is kept: the longest booking window a meeting type can have, and a day.
CALENDAR_SYNC_DAYS = int(env("CALENDAR_SYNC_DAYS", "366"))
# The live free/busy check just before a booking commits: one call per chosen host, this short.
CALENDAR_LIVE_CHECK_TIMEOUT_SECONDS = float(env("CALENDAR_LIVE_CHECK_TIMEOUT_SECONDS", "3"))

# The built-in provider sandbox (integrations/sandbox): local fakes of Zoom, Google and Microsoft
# so the demo works without real credentials. On with DEBUG while a provider has no real app;
# never in production unless PROVIDER_SANDBOX=1 is set explicitly. A provider whose *_CLIENT_ID
# is set always talks to its configured URLs, never to the sandbox.
PROVIDER_SANDBOX = env_bool(
    "PROVIDER_SANDBOX", DEBUG and not (ZOOM_CLIENT_ID and GOOGLE_CLIENT_ID and MICROSOFT_CLIENT_ID)
)
SANDBOXED_PROVIDERS = []
if PROVIDER_SANDBOX and not ZOOM_CLIENT_ID:
    SANDBOXED_PROVIDERS.append("zoom")
    ZOOM_CLIENT_ID = "sandbox-client-id"
    ZOOM_CLIENT_SECRET = ZOOM_CLIENT_SECRET or "sandbox-client-secret"
    ZOOM_WEBHOOK_SECRET_TOKEN = ZOOM_WEBHOOK_SECRET_TOKEN or "sandbox-webhook-secret"
    ZOOM_OAUTH_BASE_URL = f"{SITE_URL}/sandbox/zoom"
    ZOOM_API_BASE_URL = f"{SITE_URL}/sandbox/zoom/v2"
if PROVIDER_SANDBOX and not GOOGLE_CLIENT_ID:
    SANDBOXED_PROVIDERS.append("google")
    GOOGLE_CLIENT_ID = "sandbox-google-client-id"
    GOOGLE_CLIENT_SECRET = GOOGLE_CLIENT_SECRET or "sandbox-google-client-secret"
    GOOGLE_OAUTH_BASE_URL = f"{SITE_URL}/sandbox/google"
    GOOGLE_TOKEN_URL = f"{SITE_URL}/sandbox/google/token"
    GOOGLE_REVOKE_URL = f"{SITE_URL}/sandbox/google/revoke"
    GOOGLE_API_BASE_URL = f"{SITE_URL}/sandbox/google"
    GOOGLE_USERINFO_URL = f"{SITE_URL}/sandbox/google/v1/userinfo"
if PROVIDER_SANDBOX and not MICROSOFT_CLIENT_ID:
    SANDBOXED_PROVIDERS.append("microsoft")
    MICROSOFT_CLIENT_ID = "sandbox-microsoft-client-id"
    MICROSOFT_CLIENT_SECRET = MICROSOFT_CLIENT_SECRET or "sandbox-microsoft-client-secret"
    MICROSOFT_OAUTH_BASE_URL = f"{SITE_URL}/sandbox/microsoft/common"
    MICROSOFT_API_BASE_URL = f"{SITE_URL}/sandbox/microsoft/v1.0"
ZOOM_SANDBOX_WEBHOOK_URL = env("ZOOM_SANDBOX_WEBHOOK_URL") or None

# Internationalization: user-facing strings are translatable; times are stored in UTC and
# shown in the viewer's zone (accounts.middleware activates it).
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "UTC"
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Uploads (organization logos). Served by accounts.views.organization_logo, not by WhiteNoise.
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Security. Production (DEBUG=0) gets HTTPS-only cookies, HSTS and redirects by default.
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Access logs (runserver's django.server, django.request's warnings) show paths with their secrets
# (manage links, invitation tokens, password-reset keys, OAuth code/state) replaced: tsp/log_redaction.py.
# gunicorn's access log does the same through gunicorn.conf.py.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_secret_urls": {"()": "tsp.log_redaction.RedactSecretUrlsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_secret_urls"]},
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's default configuration gives "django" and "django.server" handlers of their own,
        # which would print the same lines again without the filter.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
    },
}

# How long a month of bookable times stays in the page cache (bookings/cache.py). 0 keeps nothing, so
# every request works its month out: the load test measures that path so. 30 s because the services
# forget what they change at once, so the lifetime only bounds how long a change made around them (the
# Django admin, a shell) can show; and under a busy day's load (bench/cache_under_load.py: 200 hosts,
# 20 meeting types, 1 booking/s, 50 pages/s, 180 s) 120 s or 300 s raised the hit ratio only from
# 0.915 to 0.920 or 0.921: bookings, not the lifetime, end nearly every cached month.
SLOTS_CACHE_SECONDS = env_int("SLOTS_CACHE_SECONDS", 30)
# Public booking forms: at most this many POSTs per client IP per window.
BOOKING_RATE_LIMIT = env_int("BOOKING_RATE_LIMIT", 20)
BOOKING_RATE_WINDOW_SECONDS = env_int("BOOKING_RATE_WINDOW_SECONDS", 600)
# The booking calendar's times (slots.json): generous, a person paging through months never
# comes close; a script asking for every month in every zone does.
SLOTS_RATE_LIMIT = env_int("SLOTS_RATE_LIMIT", 120)
SLOTS_RATE_WINDOW_SECONDS = env_int("SLOTS_RATE_WINDOW_SECONDS", 60)
# A client's manage link works until this many days after the meeting ended, read-only once it
# has started; then it answers 410 Gone and shows nothing of the booking.
MANAGE_LINK_GRACE_DAYS = env_int("MANAGE_LINK_GRACE_DAYS", 7)

# Invitations carry the organization's name (which its admin chooses) to any address: a brake on
# how many one admin may send, and how many one address may receive, per hour.
INVITATIONS_PER_ADDRESS_PER_HOUR = env_int("INVITATIONS_PER_ADDRESS_PER_HOUR", 5)
INVITATIONS_PER_ADMIN_PER_HOUR = env_int("INVITATIONS_PER_ADMIN_PER_HOUR", 30)


# Content-Security-Policy (django-csp): scripts only from our own files, never inline; styles from
# our stylesheets plus the nonce'd <style> that sets an organization's accent colour. Pages of the
# booking flow may be framed when asked for with ?embed=1 (bookings.views.embeddable). Forms may
# also lead to the providers' OAuth pages: Connect posts to us and we redirect there, and browsers
# hold that redirect to form-action.
def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "frame-ancestors": [NONE],
        "form-action": [
            SELF,
            *sorted({_origin(url) for url in (ZOOM_OAUTH_BASE_URL, GOOGLE_OAUTH_BASE_URL, MICROSOFT_OAUTH_BASE_URL)}),
        ],
    }
}
# Nothing here uses the camera, microphone or location: no page (nor anything it frames) may ask.
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), publickey-credentials-get=(), usb=(), "
    "screen-wake-lock=(), xr-spatial-tracking=()"
)
