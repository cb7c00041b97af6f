from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _

from .branding import random_logo_name, tint


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.update(is_staff=True, is_superuser=True)
        return self._create_user(email, password, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    """A login. Email is the username; what the person is in a team lives on members.TeamMember."""

    email = models.EmailField(_("email address"), unique=True)
    is_active = models.BooleanField(_("active"), default=True)
    is_staff = models.BooleanField(_("staff status"), default=False)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    def __str__(self) -> str:
        return self.email


def _logo_path(organization: "Organization", filename: str) -> str:
    return "logos/" + random_logo_name(filename.rsplit(".", 1)[-1])


class Organization(models.Model):
    """A tenant. Every team member, meeting type and booking belongs to exactly one."""

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("booking URL name"), max_length=60, unique=True)
    # Only ever written by accounts.services.update_branding, from a logo Pillow has re-encoded.
    logo = models.ImageField(_("logo"), upload_to=_logo_path, blank=True, max_length=200)
    accent_color = models.CharField(_("accent colour"), max_length=7, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("organization")
        verbose_name_plural = _("organizations")

    def __str__(self) -> str:
        return self.name

    @property
    def logo_url(self) -> str:
        if not self.logo:
            return ""
        return reverse("organization:logo", args=[self.logo.name.rsplit("/", 1)[-1]])

    @property
    def accent_tint(self) -> str:
        return tint(self.accent_color) if self.accent_color else ""

    @staticmethod
    def unique_slug_for(name: str) -> str:
        base = slugify(name)[:50] or "team"
        # Paths of the app itself must never be shadowed by an organization's booking pages.
        reserved = {
            "app",
            "accounts",
            "admin",
            "static",
            "healthz",
            "integrations",
            "invite",
            "embed",
            "help",
            "api",
            "booking",
            "sandbox",
            "dev",
            "media",
        }
        slug, n = base, 1
        while slug in reserved or Organization.objects.filter(slug=slug).exists():
            n += 1
            slug = f"{base}-{n}"
        return slug
