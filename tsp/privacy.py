"""Pages whose URL is a secret (invitation, manage links, OAuth callbacks) must not leak it.

`Referrer-Policy: same-origin` keeps the URL out of the Referer header of every request to another
site, while requests to this site still carry their Origin. `no-referrer` would be stricter in name
only: Chromium then posts the page's forms with `Origin: null`, and Django's CSRF check refuses them
(a new member could not set their password). So every such page uses this one decorator.
"""

from functools import wraps

SECRET_URL_REFERRER_POLICY = "same-origin"


def secret_url(view):
    """Mark a view whose URL carries a secret: its responses keep the URL on this site."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = SECRET_URL_REFERRER_POLICY
        return response

    return wrapper
