"""Who may see what. Views use these instead of checking roles themselves."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied


def member_required(view):
    """The viewer must be an active member of an organization."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if getattr(request, "member", None) is None:
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)

    return wrapper


def admin_required(view):
    """The viewer must be an admin of their organization; other members get 403."""

    @wraps(view)
    @member_required
    def wrapper(request, *args, **kwargs):
        if not request.member.is_admin:
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def ensure_admin(request) -> None:
    """For views that name an object: look it up in the organization first (404), then this (403)."""
    if not request.member.is_admin:
        raise PermissionDenied
