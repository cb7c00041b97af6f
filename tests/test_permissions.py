"""Who can reach which URL: every URL of the app, for every kind of visitor.

Roles:
- anonymous: not logged in
- outsider: an admin of ANOTHER organization (must get 404 for anything of ours)
- owner: the member the URL is about (for member URLs), or any member for pages about oneself
- other: another (non-admin) member of the same organization
- admin: an admin of the same organization

Every named URL must appear in MATRIX or in PUBLIC (checked by test_every_url_is_in_the_matrix),
so a new view without a permission decision fails the suite.
"""

from dataclasses import dataclass, field

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

ROLES = ("anonymous", "outsider", "owner", "other", "admin")
LOGIN = "login"  # expected: redirect to the login page


@dataclass
class Row:
    name: str
    method: str
    expected: dict[str, int | str]
    args: tuple = ()
    data: dict = field(default_factory=dict)


def _member_url(name: str, method: str, admin_status: int, owner_status: int = 403, data=None) -> Row:
    return Row(
        name,
        method,
        {"anonymous": LOGIN, "outsider": 404, "owner": owner_status, "other": 403, "admin": admin_status},
        args=("target",),
        data=data or {},
    )


MATRIX: list[Row] = [
    Row("members:list", "get", {"anonymous": LOGIN, "outsider": 200, "owner": 200, "other": 200, "admin": 200}),
    Row("members:create", "get", {"anonymous": LOGIN, "outsider": 200, "owner": 403, "other": 403, "admin": 200}),
    Row("members:profile", "get", {"anonymous": LOGIN, "outsider": 200, "owner": 200, "other": 200, "admin": 200}),
    _member_url("members:edit", "get", 200),
    _member_url("members:edit", "post", 302, data={"display_name": "X", "role": "member", "time_zone": "UTC"}),
    _member_url("members:deactivate", "post", 302),
    _member_url("members:reactivate", "post", 302),
    _member_url("members:resend_invitation", "post", 302),
]

# Reachable by everyone, by design (login pages, health, token links tested on their own).
PUBLIC = {"healthz", "home", "dashboard", "members:accept_invitation"}


def _all_url_names() -> set[str]:
    names: set[str] = set()

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if pattern.app_name and pattern.app_name.startswith(("account", "allauth")):
                    continue  # django-allauth's own views: login, logout, reset, confirmation
                ns = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
                walk(pattern.url_patterns, ns)
            elif isinstance(pattern, URLPattern) and pattern.name and not pattern.name.startswith("account_"):
                names.add(namespace + pattern.name)

    walk(get_resolver().url_patterns)
    return names


def test_every_url_is_in_the_matrix():
    covered = {row.name for row in MATRIX} | PUBLIC
    assert _all_url_names() - covered == set()


@pytest.fixture
def people(admin, member, other_member, outsider):
    return {"anonymous": None, "outsider": outsider, "owner": member, "other": other_member, "admin": admin}


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("row", MATRIX, ids=lambda row: f"{row.method}-{row.name}")
def test_permission_matrix(row: Row, role: str, people):
    client = Client()
    if people[role] is not None:
        client.force_login(people[role].user)
    target = people["owner"]
    args = [target.pk if arg == "target" else arg for arg in row.args]
    url = reverse(row.name, args=args)
    response = getattr(client, row.method)(url, row.data)
    expected = row.expected[role]
    if expected == LOGIN:
        assert response.status_code == 302, (role, url)
        assert response["Location"].startswith(reverse("account_login")), response["Location"]
    else:
        assert response.status_code == expected, (role, url, response.status_code)
    if row.method == "post" and expected in (404, 403, LOGIN):
        target.refresh_from_db()
        assert target.is_active and target.display_name == "Maya Member", "a refused request changed nothing"
