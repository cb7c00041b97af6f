"""Connecting a video account changes nothing outside the member's own organization."""

import pytest
from cryptography.fernet import Fernet

from integrations.base import Account, TokenSet
from integrations.models import Connection, Provider
from integrations.services import save_connection

pytestmark = pytest.mark.django_db

SHARED_ZOOM = Account(user_id="zoom-user-42", account_id="zoom-account-7", email="shared@example.com")


@pytest.fixture(autouse=True)
def _encryption_key(settings):
    settings.TOKEN_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]


def _connect(member) -> Connection:
    tokens = TokenSet(
        access_token=f"access-{member.pk}",
        refresh_token=f"refresh-{member.pk}",
        expires_in=3600,
        scope="meeting:write user:read",
    )
    return save_connection(member=member, provider=Provider.ZOOM, tokens=tokens, account=SHARED_ZOOM)


def test_connecting_a_zoom_account_leaves_another_organizations_connection_alone(member, outsider):
    theirs = _connect(outsider)

    _connect(member)

    assert Connection.objects.filter(pk=theirs.pk, member=outsider).exists()


def test_within_one_organization_the_zoom_account_moves_to_the_member_who_connected_it(member, other_member):
    _connect(other_member)

    _connect(member)

    assert list(Connection.objects.filter(external_user_id=SHARED_ZOOM.user_id).values_list("member", flat=True)) == [
        member.pk
    ]
