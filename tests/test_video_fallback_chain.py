"""Who hosts the call: the fallback chain, one row per case, over real HTTP to the three sandboxes.

| Location | Who hosts the call |
|---|---|
| Zoom, round-robin / one person | the assigned member's Zoom |
| Zoom, collective | the first host (host order) with Zoom connected |
| Zoom, no host with Zoom, or Zoom failed for good | Google Meet on the first host with Google, then Teams |
| Google Meet / Microsoft Teams | that provider on the hosts likewise, then Zoom, Google Meet, Teams |
| nothing available | confirmed without a link; the host is asked to send one |

Each row books through the booking service; the follow-up (video meeting, emails) runs in-process
against the sandboxes on the live server. The row's outcome is checked where the client and the
host see it: the stored meeting, the provider's own records, both emails and the invitation.
"""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from bookings import followup
from integrations import registry
from integrations.base import TokenSet
from integrations.models import Connection, VideoMeeting
from integrations.sandbox import google, microsoft, zoom
from integrations.services import save_connection
from meetingtypes.models import MeetingType

from .booking_helpers import make_meeting_type
from .zoom_helpers import CLIENT, book_zoom_meeting, mails_to, reschedule, says_action_needed, weekday_at

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("provider_sandboxes")]

FAKES = {"zoom": zoom, "google": google, "microsoft": microsoft}
ZOOM, GOOGLE, TEAMS = "zoom", "google", "microsoft"
LOCATION = {
    ZOOM: MeetingType.Location.ZOOM,
    GOOGLE: MeetingType.Location.GOOGLE_MEET,
    TEAMS: MeetingType.Location.MICROSOFT_TEAMS,
}
ROUND_ROBIN, COLLECTIVE = MeetingType.Assignment.ROUND_ROBIN, MeetingType.Assignment.COLLECTIVE


@dataclass
class Row:
    """One case: the hosts (in host order) and what each has connected; what goes wrong; who hosts."""

    id: str
    location: str
    assignment: str
    hosts: list[set[str]]  # per host, in host order: the providers connected
    expected: tuple[str, int] | None  # (provider, index of the host whose account hosts the call); None: no link
    personal_microsoft: bool = False  # the Microsoft accounts are personal ones (Teams refuses them: 403)
    zoom_refuses: bool = False  # Zoom refuses to create the meeting (a permanent 4xx)
    zoom_down_until_the_end: bool = False  # Zoom answers 503 until the retries' time runs out
    fell_back_from: str = ""  # the provider the type asked for, named on pages and emails when not used
    notes: list[str] = field(default_factory=list)


ROWS = [
    Row("zoom-one-host-zoom", ZOOM, ROUND_ROBIN, [{ZOOM, GOOGLE}], (ZOOM, 0)),
    Row("zoom-collective-first-host-with-zoom", ZOOM, COLLECTIVE, [{GOOGLE}, {ZOOM}, {ZOOM}], (ZOOM, 1)),
    Row("zoom-no-zoom-google-first", ZOOM, COLLECTIVE, [{TEAMS}, {GOOGLE}], (GOOGLE, 1), fell_back_from="Zoom"),
    Row("zoom-no-zoom-no-google-teams", ZOOM, COLLECTIVE, [set(), {TEAMS}], (TEAMS, 1), fell_back_from="Zoom"),
    Row(
        "zoom-refuses-then-google", ZOOM, ROUND_ROBIN, [{ZOOM, GOOGLE}], (GOOGLE, 0),
        zoom_refuses=True, fell_back_from="Zoom",
    ),
    Row(
        "zoom-down-past-its-retries-then-google", ZOOM, ROUND_ROBIN, [{ZOOM, GOOGLE}], (GOOGLE, 0),
        zoom_down_until_the_end=True, fell_back_from="Zoom",
    ),
    Row("google-asked-google", GOOGLE, ROUND_ROBIN, [{ZOOM, GOOGLE}], (GOOGLE, 0)),
    Row("google-collective-first-host-with-google", GOOGLE, COLLECTIVE, [{ZOOM}, {GOOGLE}], (GOOGLE, 1)),
    Row("google-none-then-zoom", GOOGLE, ROUND_ROBIN, [{ZOOM, TEAMS}], (ZOOM, 0), fell_back_from="Google Meet"),
    Row("teams-asked-teams", TEAMS, ROUND_ROBIN, [{GOOGLE, TEAMS}], (TEAMS, 0)),
    Row(
        "teams-personal-account-skipped-then-zoom", TEAMS, ROUND_ROBIN, [{ZOOM, TEAMS}], (ZOOM, 0),
        personal_microsoft=True, fell_back_from="Microsoft Teams",
    ),
    Row("nothing-connected", ZOOM, COLLECTIVE, [set(), set()], None),
    Row("teams-personal-only-nothing-left", TEAMS, ROUND_ROBIN, [{TEAMS}], None, personal_microsoft=True),
]  # fmt: skip


def connect(member, provider: str, *, personal: bool = False) -> Connection:
    """A connection with tokens the provider's sandbox really issued, its account read over HTTP."""
    email = f"{member.display_name.split()[0].lower()}.{provider}@accounts.example"
    body = FAKES[provider].issue_tokens(email, personal=True) if personal else FAKES[provider].issue_tokens(email)
    tokens = TokenSet(body["access_token"], body.get("refresh_token", ""), int(body["expires_in"]), body["scope"])
    account = registry.get(provider).get_account(tokens.access_token)
    return save_connection(member=member, provider=provider, tokens=tokens, account=account)


def meetings_at(provider: str) -> list[dict]:
    """The meetings (Zoom, Teams) or Meet events (Google) each sandbox holds, deleted ones left out."""
    summary = FAKES[provider].state_summary()
    items = summary["events"] if provider == GOOGLE else summary["meetings"]
    return [item for item in items if not item.get("deleted") and item.get("status") != "cancelled"]


@pytest.fixture
def team(make_member, organization):
    return [make_member(organization, name=name, time_zone="UTC") for name in ("Hana Host", "Ivo Host", "Jun Host")]


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
def test_the_chain(row: Row, team, organization, settings):
    hosts = team[: len(row.hosts)]
    for host, providers in zip(hosts, row.hosts, strict=True):
        for provider in sorted(providers):
            connect(host, provider, personal=row.personal_microsoft and provider == TEAMS)
    meeting_type = make_meeting_type(
        organization, hosts, name="Consultation", location=LOCATION[row.location], assignment=row.assignment
    )
    if row.zoom_refuses:
        zoom.inject_failure("/users/me/meetings", method="POST", status=400, times=5,
                            body={"code": 300, "message": "Invalid meeting settings."})  # fmt: skip
    if row.zoom_down_until_the_end:
        # Retries are budgeted in time, until shortly before the meeting: a budget already spent
        # makes the first 503 the last one Zoom gets.
        settings.VIDEO_RETRY_UNTIL_MINUTES_BEFORE = 10 * 24 * 60
        zoom.inject_failure("/users/me/meetings", method="POST", status=503, times=50)

    booking = book_zoom_meeting(meeting_type, weekday_at(11))
    meeting = VideoMeeting.objects.get(booking=booking)

    everything_made = {provider: len(meetings_at(provider)) for provider in FAKES}
    client_mail = mails_to(CLIENT["client_email"])[-1]
    host_mails = [message for host in hosts for message in mails_to(host.user.email)]
    invitation = client_mail.attachments[0][1] if client_mail.attachments else ""
    invitation = invitation.decode() if isinstance(invitation, bytes) else invitation
    invitation = invitation.replace("\r\n ", "")  # unfolded: iCalendar wraps long lines

    if row.expected is None:
        assert meeting.state == VideoMeeting.State.FAILED and not meeting.join_url
        assert booking.status == booking.Status.CONFIRMED
        assert says_action_needed(host_mails)
        assert "will send" in client_mail.body
        assert sum(everything_made.values()) == 0
        return
    provider, host_index = row.expected
    assert (meeting.state, meeting.provider, meeting.host_id) == (
        VideoMeeting.State.READY,
        provider,
        hosts[host_index].pk,
    )
    assert everything_made == {key: int(key == provider) for key in FAKES}, "one meeting, on one provider"
    assert meeting.join_url in client_mail.body and meeting.join_url in invitation
    assert all(
        meeting.join_url in message.body for message in host_mails if "action needed" not in message.subject.lower()
    )
    if row.fell_back_from:
        label = f"{registry.get(provider).meeting_name} — {row.fell_back_from} was not available"
        assert meeting.provider_label == label
        assert label in client_mail.body
    else:
        assert "was not available" not in client_mail.body
    if row.personal_microsoft:
        assert not Connection.objects.get(provider=TEAMS, member=hosts[0]).can_host_meetings

    # A task that runs again (a redelivered message, the sweep) makes no second meeting anywhere.
    sent = len(mail.outbox)
    followup.run(booking.pk, first_run=True)
    followup.sweep(now=timezone.now() + timedelta(hours=1))
    assert {key: len(meetings_at(key)) for key in FAKES} == everything_made
    assert len(mail.outbox) == sent


@pytest.mark.parametrize("second_chance", ["reschedule", "send again"])
def test_an_account_passed_over_is_tried_again_after_a_reschedule_or_send_again(second_chance, team, organization):
    hana = team[0]
    connect(hana, GOOGLE)
    meeting_type = make_meeting_type(organization, [hana], name="Consultation", location=LOCATION[GOOGLE])
    google.inject_failure("/events", method="POST", status=400, body={"error": {"code": 400, "message": "Bad"}})
    booking = book_zoom_meeting(meeting_type, weekday_at(11))
    meeting = VideoMeeting.objects.get(booking=booking)
    assert meeting.state == VideoMeeting.State.FAILED and meeting.passed_over == [[GOOGLE, hana.pk]]

    if second_chance == "reschedule":
        reschedule(booking, weekday_at(12))
    else:
        followup.resend(booking)
        followup.run(booking.pk)

    meeting.refresh_from_db()
    assert (meeting.state, meeting.provider, meeting.host_id) == (VideoMeeting.State.READY, GOOGLE, hana.pk)
    assert len(meetings_at(GOOGLE)) == 1
