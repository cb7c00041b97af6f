"""Whether a video meeting type's hosts can give its bookings a link, for the admins' warnings.

The answer follows the fallback chain of integrations.video (`providers_for`): the provider the
location names, then the other video providers offered on this site, each on the booking's hosts
in host order. Computed over plain data (who has which usable account), so the meeting-type list
can ask it for every row from what one prefetch loaded.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.utils.text import get_text_list
from django.utils.translation import gettext as _

from integrations import registry
from integrations.base import VideoProvider
from integrations.video import providers_for

from .models import MeetingType, MeetingTypeHost


@dataclass(frozen=True)
class HostAccounts:
    name: str
    # Keys of the providers whose account of this host may host meetings now (connected, not
    # broken, and not refused by the provider, as Teams refuses personal Microsoft accounts).
    usable: frozenset[str]


@dataclass(frozen=True)
class VideoCoverage:
    wanted: VideoProvider  # the provider the meeting type's location names
    wanted_offered: bool  # whether members can connect it on this site at all
    host_count: int  # active hosts: deactivated ones are never booked
    without_account: list[str] = field(default_factory=list)  # hosts no provider of the chain can serve
    # When no host can use the wanted provider: what bookings get instead, in chain order (a
    # round-robin booking uses its own host's account, so there may be more than one).
    used_instead: list[VideoProvider] = field(default_factory=list)
    collective: bool = False

    @property
    def nobody_can_host(self) -> bool:
        return self.host_count > 0 and len(self.without_account) == self.host_count

    @property
    def some_cannot_host(self) -> bool:
        return 0 < len(self.without_account) < self.host_count

    @property
    def missing_count(self) -> int:
        return len(self.without_account)

    @property
    def without_account_names(self) -> str:
        return ", ".join(self.without_account)

    @property
    def used_instead_names(self) -> str:
        """The fallbacks' names, "Zoom or Microsoft Teams" when round-robin hosts use different ones."""
        return get_text_list([provider.meeting_name for provider in self.used_instead], _("or"))

    @property
    def needs_attention(self) -> bool:
        return not self.wanted_offered or bool(self.without_account) or bool(self.used_instead)


def coverage(*, location: str, assignment: str, hosts: Iterable[HostAccounts]) -> VideoCoverage | None:
    """What bookings of a meeting type at `location` get from these hosts (in host order); None
    for a location without a video meeting (phone, in person, a custom link)."""
    wanted = registry.for_location(location)
    if wanted is None:
        return None
    chain = [provider.key for provider in providers_for(location)]
    hosts = list(hosts)
    chains_of_hosts = [[key for key in chain if key in host.usable] for host in hosts]
    collective = assignment == MeetingType.Assignment.COLLECTIVE
    return VideoCoverage(
        wanted=wanted,
        wanted_offered=wanted.key in chain,
        host_count=len(hosts),
        without_account=[host.name for host, usable in zip(hosts, chains_of_hosts, strict=True) if not usable],
        used_instead=_used_instead(wanted, chain, chains_of_hosts, collective=collective),
        collective=collective,
    )


def _used_instead(
    wanted: VideoProvider, chain: list[str], chains_of_hosts: list[list[str]], *, collective: bool
) -> list[VideoProvider]:
    if any(wanted.key in usable for usable in chains_of_hosts):
        return []
    if collective:
        # The chain tries each provider on every host before the next provider: the first one
        # any host has wins, for every booking.
        first = next((key for key in chain if any(key in usable for usable in chains_of_hosts)), None)
        keys = [first] if first else []
    else:
        # A round-robin or one-person booking has one host: that host's first provider in the chain.
        firsts = {usable[0] for usable in chains_of_hosts if usable}
        keys = [key for key in chain if key in firsts]
    return [registry.get(key) for key in keys]


def host_accounts(links: Iterable[MeetingTypeHost]) -> list[HostAccounts]:
    """The active hosts of `links` (members with `connection_list` prefetched) and their usable accounts."""
    return [
        HostAccounts(
            name=link.member.display_name,
            usable=frozenset(connection.provider for connection in link.member.connection_list if connection.can_host),
        )
        for link in links
        if link.member.is_active
    ]


def coverage_of(meeting_type: MeetingType, links: Iterable[MeetingTypeHost]) -> VideoCoverage | None:
    """`coverage` of a meeting type whose host links (in host order) were loaded with
    meetingtypes.selectors.host_links_with_accounts."""
    return coverage(location=meeting_type.location, assignment=meeting_type.assignment, hosts=host_accounts(links))
