"""The OAuth authorization-code flow with PKCE, shared by every provider.

`state` is random, stored in the session together with what it is for (provider, member, PKCE
verifier) and popped on return: single use, bound to this browser session and this member.
"""

import base64
import hashlib
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode

SESSION_KEY = "oauth_flows"
FLOW_LIFETIME_SECONDS = 600
MAX_PENDING_FLOWS = 5


@dataclass
class Flow:
    provider: str
    member_id: int
    verifier: str


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def begin(request, *, provider: str, member_id: int, authorize_url: str, params: dict) -> str:
    """Remember a new flow in the session; return the provider's consent URL."""
    state = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    now = time.time()
    flows = {
        key: flow
        for key, flow in request.session.get(SESSION_KEY, {}).items()
        if now - flow["created"] < FLOW_LIFETIME_SECONDS
    }
    flows[state] = {"provider": provider, "member_id": member_id, "verifier": verifier, "created": now}
    # A few tabs at once are fine; an unbounded pile in the session is not.
    newest = sorted(flows.items(), key=lambda item: item[1]["created"])[-MAX_PENDING_FLOWS:]
    request.session[SESSION_KEY] = dict(newest)
    query = {**params, "state": state, "code_challenge": pkce_challenge(verifier), "code_challenge_method": "S256"}
    return f"{authorize_url}?{urlencode(query)}"


def complete(request, *, provider: str, member_id: int, state: str | None) -> Flow | None:
    """Pop the flow named by `state`. None if missing, forged, replayed, expired or someone else's."""
    flows = request.session.get(SESSION_KEY, {})
    flow = flows.pop(state, None) if state else None
    request.session[SESSION_KEY] = flows
    if flow is None or flow["provider"] != provider or flow["member_id"] != member_id:
        return None
    if time.time() - flow["created"] >= FLOW_LIFETIME_SECONDS:
        return None
    return Flow(provider=flow["provider"], member_id=flow["member_id"], verifier=flow["verifier"])
