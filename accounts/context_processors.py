from django.conf import settings


def current_member(request):
    return {
        "current_member": getattr(request, "member", None),
        "current_organization": getattr(request, "organization", None),
        "support_email": settings.SUPPORT_EMAIL,
    }
