"""The development outbox: emails the app sent, readable in the browser (DEBUG only).

Under `make run` there is no SMTP server. This email backend writes each message as one .eml file
in var/outbox/ (so the web process and a worker share it), and /dev/outbox/ lists them with their
HTML body and attachments, so a booking can be followed to its join link. The URLs exist only when
EMAIL_OUTBOX is on, which never happens with DEBUG off.
"""

import re
import uuid
from email import policy
from email.parser import BytesParser
from pathlib import Path

from csp.constants import SELF
from csp.decorators import csp_replace
from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone

_NAME = re.compile(r"^[0-9]{8}T[0-9]{6}-[0-9a-f]{32}\.eml$")


def outbox_dir() -> Path:
    return Path(settings.EMAIL_OUTBOX_DIR)


class OutboxEmailBackend(BaseEmailBackend):
    def send_messages(self, email_messages):
        folder = outbox_dir()
        folder.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            name = f"{timezone.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex}.eml"
            (folder / name).write_bytes(message.message().as_bytes())
        return len(email_messages)


def _read(name: str):
    if not _NAME.match(name):
        raise Http404
    file = outbox_dir() / name
    if not file.is_file():
        raise Http404
    return BytesParser(policy=policy.default).parsebytes(file.read_bytes())


def _summary(name: str) -> dict:
    message = _read(name)
    return {"name": name, "subject": message["subject"], "to": message["to"], "date": message["date"]}


def outbox_list(request):
    folder = outbox_dir()
    names = sorted((p.name for p in folder.glob("*.eml")), reverse=True)[:200] if folder.exists() else []
    return render(request, "outbox/list.html", {"messages_": [_summary(name) for name in names]})


# The email's HTML is shown in a srcdoc frame, which inherits this page's policy; emails carry
# their styles inline (mail clients ignore stylesheets). The page itself uses no nonce, so
# 'unsafe-inline' is not overridden; the frame runs no scripts (sandbox="").
@csp_replace({"style-src": [SELF, "'unsafe-inline'"]})
def outbox_detail(request, name: str):
    message = _read(name)
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    attachments = [
        {"index": index, "filename": part.get_filename() or f"part-{index}", "type": part.get_content_type()}
        for index, part in enumerate(message.iter_attachments())
    ]
    # Calendar invitations often travel as a text/calendar alternative rather than an attachment.
    calendars = [part for part in message.walk() if part.get_content_type() == "text/calendar"]
    context = {
        "name": name,
        "message": message,
        "html": html.get_content() if html else "",
        "text": text.get_content() if text else "",
        "attachments": attachments,
        "calendar": calendars[0].get_content() if calendars else "",
    }
    return render(request, "outbox/detail.html", context)


def outbox_attachment(request, name: str, index: int):
    parts = list(_read(name).iter_attachments())
    if not 0 <= index < len(parts):
        raise Http404
    part = parts[index]
    response = HttpResponse(part.get_content(), content_type=part.get_content_type())
    response["Content-Disposition"] = f'attachment; filename="{part.get_filename() or "attachment"}"'
    return response


urlpatterns = [
    path("", outbox_list, name="list"),
    path("<str:name>/", outbox_detail, name="detail"),
    path("<str:name>/attachments/<int:index>/", outbox_attachment, name="attachment"),
]
app_name = "outbox"
