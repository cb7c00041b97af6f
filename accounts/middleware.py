import zoneinfo

from django.contrib.auth import logout
from django.utils import timezone

from members.models import TeamMember


class CurrentMemberMiddleware:
    """Attach the signed-in user's active membership (request.member, request.organization).

    Every tenant-scoped query starts from request.organization. A user whose membership was
    deactivated is signed out on their next request, whatever session they still hold.
    Times are shown in the member's own time zone.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.member = None
        request.organization = None
        if request.user.is_authenticated:
            member = (
                TeamMember.objects.select_related("organization", "user")
                .filter(user=request.user, is_active=True)
                .order_by("id")
                .first()
            )
            if member is None and not request.user.is_superuser:
                logout(request)
            elif member is not None:
                request.member = member
                request.organization = member.organization
                timezone.activate(zoneinfo.ZoneInfo(member.time_zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
