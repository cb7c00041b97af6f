from django.db import transaction

from bookings import last_booked
from bookings.cache import meeting_type_changed
from members.models import TeamMember

from .models import MeetingType, MeetingTypeHost


@transaction.atomic
def save_meeting_type(*, form, organization) -> MeetingType:
    """Save the form's meeting type and its hosts, keeping the order of hosts already there."""
    meeting_type: MeetingType = form.save(commit=False)
    meeting_type.organization = organization
    meeting_type.save()
    chosen = {member.pk for member in form.cleaned_data["hosts"]}
    links = list(meeting_type.host_links.all())
    MeetingTypeHost.objects.filter(meeting_type=meeting_type).exclude(member_id__in=chosen).delete()
    kept = [link.member_id for link in links if link.member_id in chosen]
    added = [member.pk for member in form.cleaned_data["hosts"] if member.pk not in kept]
    _write_order(meeting_type, kept + added)
    # A host taken off and put back keeps their place in the round-robin rotation.
    last_booked.refresh(meeting_type.host_links.filter(member_id__in=added))
    meeting_type_changed(meeting_type.pk)
    return meeting_type


def _write_order(meeting_type: MeetingType, member_ids: list[int]) -> None:
    existing = {link.member_id: link for link in meeting_type.host_links.all()}
    for position, member_id in enumerate(member_ids):
        link = existing.get(member_id)
        if link is None:
            MeetingTypeHost.objects.create(meeting_type=meeting_type, member_id=member_id, position=position)
        elif link.position != position:
            link.position = position
            link.save(update_fields=["position"])


@transaction.atomic
def move_host_up(*, meeting_type: MeetingType, member: TeamMember) -> None:
    order = list(meeting_type.host_links.order_by("position", "id").values_list("member_id", flat=True))
    index = order.index(member.pk)
    if index > 0:
        order[index - 1], order[index] = order[index], order[index - 1]
        _write_order(meeting_type, order)
        meeting_type_changed(meeting_type.pk)  # a one-person type books the first host


def set_active(*, meeting_type: MeetingType, active: bool) -> None:
    meeting_type.is_active = active
    meeting_type.save(update_fields=["is_active", "updated_at"])
    meeting_type_changed(meeting_type.pk)
