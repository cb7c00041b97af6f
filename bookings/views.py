from functools import lru_cache, wraps
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import get_language, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import member_required
from integrations.models import VideoMeeting
from meetingtypes.models import MeetingType
from members.timezones import TimeZoneSelect, canonical_name, is_valid_time_zone, time_zone_choices
from tsp.formatting import browser_locale
from tsp.privacy import secret_url
from tsp.ratelimit import client_ip, hit, seconds_left

from . import calendar_links, followup, public_lookups, selectors, services, slots
from .forms import MONTH_NOT_OFFERED, BookingForm, CancelForm, RescheduleForm, VideoLinkForm, parse_month, parse_start
from .models import EmailDelivery

# ---------------------------------------------------------------- helpers


def embeddable(view):
    """Pages of the booking flow may be framed by any site when asked for with ?embed=1.

    Everything else keeps X-Frame-Options: DENY.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        if _is_embed(request):
            response.xframe_options_exempt = True
            response._csp_replace = {"frame-ancestors": ["*"]}  # django-csp: the rest of the policy stays
        return response

    return wrapper


def _is_embed(request) -> bool:
    return request.GET.get("embed") == "1" or request.POST.get("embed") == "1"


def _zone_or_none(name: str | None) -> ZoneInfo | None:
    canonical = canonical_name(name)
    return ZoneInfo(canonical) if canonical else None


def _public_meeting_type(org_slug: str, slug: str, *, include_inactive: bool = False) -> MeetingType:
    """The meeting type at a public address, from the shared cache. `include_inactive` is a booking
    being made: it is decided on the meeting type the database holds, never on a cached copy."""
    meeting_type = public_lookups.meeting_type_at(org_slug, slug, cached=not include_inactive)
    if meeting_type is None or not (meeting_type.is_active or include_inactive):
        raise Http404
    return meeting_type


def _host_names(meeting_type: MeetingType) -> str:
    names = public_lookups.host_names(meeting_type)
    if meeting_type.assignment == MeetingType.Assignment.ONE_PERSON:
        names = names[:1]
    if meeting_type.assignment == MeetingType.Assignment.ROUND_ROBIN and len(names) > 1:
        return _("One of: %(names)s") % {"names": ", ".join(names)}
    return ", ".join(names)


def _rate_limited(request) -> bool:
    return not hit(
        "booking-post",
        client_ip(request),
        limit=settings.BOOKING_RATE_LIMIT,
        window_seconds=settings.BOOKING_RATE_WINDOW_SECONDS,
    )


def _too_many(request, context):
    context["error"] = _("Too many attempts from your network. Please wait a few minutes and try again.")
    response = render(request, "bookings/public/error.html", context, status=429)
    response["Retry-After"] = str(seconds_left(settings.BOOKING_RATE_WINDOW_SECONDS))
    return response


def _json_error(message: str, *, status: int = 400) -> JsonResponse:
    response = JsonResponse({"error": message}, status=status)
    response["Cache-Control"] = "no-store"
    return response


def _slots_rate_limited(request) -> JsonResponse | None:
    """The calendar's times are worked out on request: a generous limit per IP on asking for them."""
    window = settings.SLOTS_RATE_WINDOW_SECONDS
    if hit("slots", client_ip(request), limit=settings.SLOTS_RATE_LIMIT, window_seconds=window):
        return None
    response = _json_error(_("Too many requests from your network. Please wait a minute and try again."), status=429)
    response["Retry-After"] = str(seconds_left(window))
    return response


def _slots_response(request, meeting_type, exclude_booking_id=None):
    zone = _zone_or_none(request.GET.get("tz") or "UTC")
    if zone is None:
        return _json_error(_("Unknown time zone."))
    month = None
    if month_text := request.GET.get("month"):
        try:
            month = parse_month(month_text)
        except ValueError as error:
            return _json_error(str(error))
    try:
        page = slots.month_page_json(
            meeting_type, month=month, zone=zone, now=timezone.now(), exclude_booking_id=exclude_booking_id
        )
    except slots.MonthNotOffered:
        return _json_error(str(MONTH_NOT_OFFERED))
    response = HttpResponse(page, content_type="application/json")
    response["Cache-Control"] = "no-store"
    return response


@lru_cache(maxsize=32)
def _time_zone_select(selected: str, choices: tuple[tuple[str, str], ...], language: str) -> str:
    """The calendar's time zone <select>, rendered once per zone selected, list of zones and
    language (its labels), not on every request.

    Its 400-odd options rendered through the widget templates cost about three quarters of the
    booking page's CPU time. What it shows depends on nothing else: the zones' labels change with
    their offsets (so with the hour) and the language, both of which make a new `choices`.
    """
    widget = TimeZoneSelect(attrs={"id": "booking-tz", "aria-describedby": "booking-tz-note"})
    widget.choices = choices
    return widget.render("tz", selected or None)


def _calendar_context(request, meeting_type, *, slots_url, select_url, heading="", default_time_zone=""):
    tz = canonical_name(request.GET.get("tz", "")) or canonical_name(default_time_zone) or ""
    # A month the calendar would refuse (a tampered or very old link) opens the first month instead.
    try:
        month = parse_month(request.GET.get("month", ""))
    except ValueError:
        month = None
    if month and not slots.is_browsable(meeting_type, month, zone=ZoneInfo(tz or "UTC"), now=timezone.now()):
        month = None
    return {
        "organization": meeting_type.organization,
        "meeting_type": meeting_type,
        "host_names": _host_names(meeting_type),
        "embed": _is_embed(request),
        "slots_url": slots_url,
        "select_url": select_url,
        "time_zone_select": _time_zone_select(tz, tuple(time_zone_choices()), get_language()),
        "initial_time_zone": tz,
        "initial_month": month.strftime("%Y-%m") if month else "",
        "taken": request.GET.get("taken") == "1",
        "not_offered": request.GET.get("not_offered") == "1",
        "prefill_name": request.GET.get("name", "")[:120],
        "prefill_email": request.GET.get("email", "")[:254],
        "heading": heading,
    }


def _back_to_calendar(url: str, *, tz: str, start, embed: bool, refusal: services.SlotUnavailable) -> str:
    """The calendar again, saying why: a time never offered (a tampered or stale form) is not "just taken"."""
    reason = "not_offered" if isinstance(refusal, services.SlotNotOffered) else "taken"
    params = {reason: "1", "tz": canonical_name(tz) or "UTC"}
    if start is not None:
        params["month"] = start.astimezone(ZoneInfo(params["tz"])).strftime("%Y-%m")
    if embed:
        params["embed"] = "1"
    return f"{url}?{urlencode(params)}"


def _with_embed(url: str, request, **params) -> str:
    if _is_embed(request):
        params["embed"] = "1"
    return f"{url}?{urlencode(params)}" if params else url


# ---------------------------------------------------------------- the public booking flow


@embeddable
@require_GET
def organization_page(request, org_slug: str):
    meeting_types = list(
        MeetingType.objects.select_related("organization").filter(organization__slug=org_slug, is_active=True)
    )
    if not meeting_types:
        raise Http404
    context = {
        "organization": meeting_types[0].organization,
        "meeting_types": meeting_types,
        "embed": _is_embed(request),
    }
    return render(request, "bookings/public/organization.html", context)


@embeddable
@require_GET
def public_page(request, org_slug: str, slug: str):
    meeting_type = _public_meeting_type(org_slug, slug)
    context = _calendar_context(
        request,
        meeting_type,
        slots_url=reverse("bookings:slots", args=[org_slug, slug]),
        select_url=reverse("bookings:book", args=[org_slug, slug]),
    )
    return render(request, "bookings/public/calendar.html", context)


@never_cache
@require_GET
def slots_json(request, org_slug: str, slug: str):
    if limited := _slots_rate_limited(request):
        return limited
    meeting_type = _public_meeting_type(org_slug, slug)
    return _slots_response(request, meeting_type)


# The public forms are exempt from CSRF: they carry no login (nothing for another site to ride
# on), and embedded in a third-party iframe the CSRF cookie would not be sent. Abuse is limited
# per IP instead.
@csrf_exempt
@embeddable
@require_http_methods(["GET", "POST"])
def book(request, org_slug: str, slug: str):
    meeting_type = _public_meeting_type(org_slug, slug, include_inactive=request.method == "POST")
    calendar_url = reverse("bookings:public_page", args=[org_slug, slug])
    # The host names (a query) only go with a page: a booking made answers with a redirect.
    context = {
        "organization": meeting_type.organization,
        "meeting_type": meeting_type,
        "embed": _is_embed(request),
        "calendar_url": calendar_url,
    }
    if request.method == "GET":
        start = parse_start(request.GET.get("start", ""))
        tz = request.GET.get("tz", "")
        if start is None or not is_valid_time_zone(tz):
            return redirect(_with_embed(calendar_url, request))
        form = BookingForm(
            initial={
                "start": request.GET["start"],
                "time_zone": tz,
                "name": request.GET.get("name", "")[:120],
                "email": request.GET.get("email", "")[:254],
            }
        )
    else:
        if _rate_limited(request):
            return _too_many(request, {**context, "host_names": _host_names(meeting_type)})
        form = BookingForm(request.POST)
        if not meeting_type.is_active:
            form.add_error(None, _("This meeting type no longer takes bookings."))
        elif form.is_valid():
            data = form.cleaned_data
            try:
                booking = services.book(
                    meeting_type=meeting_type,
                    start=data["start"],
                    client_name=data["name"],
                    client_email=data["email"],
                    client_notes=data["notes"],
                    client_time_zone=data["time_zone"],
                    client_locale=browser_locale(request) or "",
                )
            except services.SlotUnavailable as refusal:
                back = _back_to_calendar(
                    calendar_url,
                    tz=data["time_zone"],
                    start=data["start"],
                    embed=_is_embed(request),
                    refusal=refusal,
                )
                return redirect(back)
            return redirect(_with_embed(booking.manage_url(), request, booked="1"))
    start = form["start"].value()
    tz = form["time_zone"].value()
    start = parse_start(start or "")
    end = start + meeting_type.duration if start else None
    context.update(form=form, start=start, end=end, zone=_zone_or_none(tz), time_zone_name=tz)
    context["host_names"] = _host_names(meeting_type)
    return render(request, "bookings/public/book.html", context, status=400 if form.errors else 200)


def _booking_or_404(uid, token):
    booking = selectors.get_booking_by_link(str(uid), token)
    if booking is None:
        raise Http404
    return booking


def _summary_context(request, booking) -> dict:
    """What the booking pages show around the booking itself: nothing of the client's."""
    return {
        "organization": booking.organization,
        "meeting_type": booking.meeting_type,
        "host_names": ", ".join(row.member.display_name for row in booking.host_rows.all()),
        "embed": _is_embed(request),
    }


def _link_expired(request, booking, *, as_json: bool = False):
    """410 Gone: a link that leaked (a forwarded email, a shared computer) stops showing who booked
    and the join link once the meeting is well over; and it never changes anything again."""
    days = settings.MANAGE_LINK_GRACE_DAYS
    message = ngettext(
        "This link has expired: the meeting ended more than %(days)d day ago.",
        "This link has expired: the meeting ended more than %(days)d days ago.",
        days,
    ) % {"days": days}
    if as_json:
        return _json_error(message, status=410)
    context = {**_summary_context(request, booking), "error": message}
    return render(request, "bookings/public/error.html", context, status=410)


def manage_link(view):
    """A view behind a client's manage link: called with the booking the link names (404 for a
    link that names none) as long as the link has not expired (410 after that)."""

    @wraps(view)
    def wrapper(request, uid, token: str):
        booking = _booking_or_404(uid, token)
        if services.manage_link_expired(booking, now=timezone.now()):
            return _link_expired(request, booking)
        return view(request, booking, token)

    return wrapper


def _cannot_move(request, booking, *, as_json: bool = False):
    message = _("This meeting type no longer takes bookings, so this booking can't be moved. You can still cancel it.")
    if as_json:
        return _json_error(message, status=409)
    context = {**_summary_context(request, booking), "error": message}
    return render(request, "bookings/public/error.html", context, status=409)


def _manage_context(request, booking):
    tz = request.GET.get("tz") or booking.client_time_zone
    zone = _zone_or_none(tz) or ZoneInfo("UTC")
    hosts = [row.member for row in booking.host_rows.all()]
    changeable = not booking.is_cancelled and booking.start > timezone.now()
    return {
        **_summary_context(request, booking),
        "booking": booking,
        "hosts": hosts,
        "zone": zone,
        "changeable": changeable,
        "movable": changeable and booking.meeting_type.is_active,
    }


@secret_url
@embeddable
@require_GET
@manage_link
def manage(request, booking, token: str):
    context = _manage_context(request, booking)
    context["just_booked"] = request.GET.get("booked") == "1"
    context["just_moved"] = request.GET.get("moved") == "1"
    if not booking.is_cancelled:
        context["calendar_links"] = calendar_links.links(booking)
        context["calendar_file_url"] = reverse("bookings:calendar_file", args=[booking.uid, token])
    response = render(request, "bookings/public/manage.html", context)
    return response


@secret_url
@never_cache
@require_GET
@manage_link
def calendar_file(request, booking, token: str):
    """The booking as an .ics file: the emails' invitation (same UID and SEQUENCE), so the event a
    calendar files from it is the one later emails update."""
    response = HttpResponse(calendar_links.ics(booking), content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{booking.meeting_type.slug}.ics"'
    return response


@secret_url
@csrf_exempt
@embeddable
@require_http_methods(["GET", "POST"])
@manage_link
def cancel(request, booking, token: str):
    context = _manage_context(request, booking)
    form = CancelForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if _rate_limited(request):
            return _too_many(request, context)
        if form.is_valid():
            try:
                services.cancel(booking=booking, reason=form.cleaned_data["reason"])
            except services.BookingLocked:
                form.add_error(None, _("This booking can no longer be cancelled."))
            else:
                return redirect(_with_embed(booking.manage_url(), request))
    context["form"] = form
    response = render(request, "bookings/public/cancel.html", context, status=400 if form.errors else 200)
    return response


@secret_url
@embeddable
@require_GET
@manage_link
def reschedule(request, booking, token: str):
    if booking.is_cancelled or booking.start <= timezone.now():
        return redirect(_with_embed(booking.manage_url(), request))
    if not booking.meeting_type.is_active:
        return _cannot_move(request, booking)
    context = _calendar_context(
        request,
        booking.meeting_type,
        slots_url=reverse("bookings:reschedule_slots", args=[booking.uid, token]),
        select_url=reverse("bookings:reschedule_confirm", args=[booking.uid, token]),
        heading=_("Pick a new time"),
        default_time_zone=booking.client_time_zone,
    )
    context["booking"] = booking
    response = render(request, "bookings/public/calendar.html", context)
    return response


@never_cache
@require_GET
def reschedule_slots(request, uid, token: str):
    if limited := _slots_rate_limited(request):
        return limited
    booking = _booking_or_404(uid, token)
    if services.manage_link_expired(booking, now=timezone.now()):
        return _link_expired(request, booking, as_json=True)
    if booking.is_cancelled:
        return _json_error(_("This booking was cancelled."))
    if not booking.meeting_type.is_active:
        return _cannot_move(request, booking, as_json=True)
    return _slots_response(request, booking.meeting_type, exclude_booking_id=booking.pk)


@secret_url
@csrf_exempt
@embeddable
@require_http_methods(["GET", "POST"])
@manage_link
def reschedule_confirm(request, booking, token: str):
    if booking.is_cancelled or booking.start <= timezone.now():
        return redirect(_with_embed(booking.manage_url(), request))
    if not booking.meeting_type.is_active:
        return _cannot_move(request, booking)
    calendar_url = reverse("bookings:reschedule", args=[booking.uid, token])
    context = _manage_context(request, booking)
    data = request.POST if request.method == "POST" else request.GET
    form = RescheduleForm({"start": data.get("start", ""), "time_zone": data.get("tz") or data.get("time_zone", "")})
    if not form.is_valid():
        if request.method == "GET":  # a link without a usable time: the calendar again
            return redirect(_with_embed(calendar_url, request))
        # Posted from our own form's hidden fields: only a tampered post gets here.
        error = next(iter(form.errors.values()))[0]
        return render(request, "bookings/public/error.html", {**context, "error": error}, status=400)
    new_start, tz = form.cleaned_data["start"], form.cleaned_data["time_zone"]
    if request.method == "POST":
        if _rate_limited(request):
            return _too_many(request, context)
        try:
            services.reschedule(booking=booking, start=new_start, client_locale=browser_locale(request))
        except services.SlotUnavailable as refusal:
            embed = _is_embed(request)
            return redirect(_back_to_calendar(calendar_url, tz=tz, start=new_start, embed=embed, refusal=refusal))
        except services.MeetingTypeClosed:
            return _cannot_move(request, booking)
        except services.BookingLocked:
            return redirect(_with_embed(booking.manage_url(), request))
        return redirect(_with_embed(booking.manage_url(), request, moved="1"))
    context.update(new_start=new_start, new_zone=ZoneInfo(tz), time_zone_name=tz, calendar_url=calendar_url)
    response = render(request, "bookings/public/reschedule_confirm.html", context)
    return response


# ---------------------------------------------------------------- the team's dashboard

BOOKINGS_PER_PAGE = 25


def _dashboard_tabs() -> dict[str, tuple[str, str]]:
    """Each tab's label and what it says when empty."""
    return {
        "upcoming": (_("Upcoming"), _("No upcoming bookings.")),
        "past": (_("Past"), _("No past bookings.")),
        "cancelled": (_("Cancelled"), _("No cancelled bookings.")),
    }


@member_required
def booking_list(request):
    tab = request.GET.get("when")
    if tab not in selectors.DASHBOARD_TABS:
        tab = "upcoming"
    now = timezone.now()
    bookings = selectors.bookings_for_dashboard(viewer=request.member, tab=tab, now=now)
    page = Paginator(bookings, BOOKINGS_PER_PAGE).get_page(request.GET.get("page"))
    counts = selectors.dashboard_tab_counts(viewer=request.member, now=now)
    tabs = _dashboard_tabs()
    for booking in page.object_list:
        _follow_up_state(booking)
    context = {
        "page": page,
        "tab": tab,
        "tabs": [(name, label, counts[name]) for name, (label, _empty) in tabs.items()],
        "tab_label": tabs[tab][0],
        "empty_text": tabs[tab][1],
        "now": now,
    }
    return render(request, "bookings/list.html", context)


@require_POST
@member_required
def booking_cancel(request, pk: int):
    booking = selectors.get_booking_for_staff(viewer=request.member, pk=pk)
    if booking is None or not selectors.may_change_booking(viewer=request.member, booking=booking):
        raise Http404  # members don't see other members' bookings at all
    try:
        services.cancel(booking=booking, reason=request.POST.get("reason", "")[:500])
    except services.BookingLocked:
        messages.error(request, _("This booking can no longer be cancelled."))
    else:
        messages.success(request, _("The booking with %(name)s was cancelled.") % {"name": booking.client_name})
    return redirect(_dashboard_url(request.POST.get("when")))


@require_http_methods(["GET", "POST"])
@member_required
def video_link(request, pk: int):
    booking = selectors.get_booking_for_staff(viewer=request.member, pk=pk)
    if booking is None or not selectors.may_change_booking(viewer=request.member, booking=booking):
        raise Http404  # members don't see other members' bookings at all
    form = VideoLinkForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.set_video_link(
                booking=booking,
                by=request.member,
                join_url=form.cleaned_data["join_url"],
                passcode=form.cleaned_data["passcode"],
            )
        except services.VideoLinkRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            messages.success(
                request, _("The video link was saved. The client and the hosts get an updated invitation by email.")
            )
            return redirect(reverse("bookings:list") + f"#booking-{booking.pk}")
    context = {"booking": booking, "meeting": booking.video_meeting_or_none, "form": form}
    return render(request, "bookings/video_link.html", context, status=400 if form.errors else 200)


def _follow_up_state(booking) -> None:
    """What admins see of a booking's follow-up: emails that failed, emails and a video link still
    being retried, and whether "Send again" has anything to do."""
    unsent = booking.unsent_emails
    booking.failed_emails = [row for row in unsent if row.state == EmailDelivery.State.FAILED]
    booking.retrying_emails = [row for row in unsent if row.state != EmailDelivery.State.FAILED and row.attempts]
    meeting = booking.video_meeting_or_none
    booking.video_retrying = meeting is not None and meeting.state == VideoMeeting.State.PENDING and meeting.attempts
    video_failed = meeting is not None and meeting.state in (VideoMeeting.State.FAILED, VideoMeeting.State.UNKNOWN)
    booking.can_resend = not booking.is_cancelled and bool(booking.failed_emails or video_failed)


@require_POST
@member_required
def booking_resend(request, pk: int):
    """An admin sends again what failed for a booking (its emails, its video meeting)."""
    booking = selectors.get_booking_for_staff(viewer=request.member, pk=pk)
    if booking is None:
        raise Http404
    if not request.member.is_admin:
        raise PermissionDenied
    if followup.resend(booking):
        messages.success(
            request, _("Sending again what failed for the booking with %(name)s.") % {"name": booking.client_name}
        )
    else:
        messages.info(request, _("Nothing failed for the booking with %(name)s.") % {"name": booking.client_name})
    return redirect(_dashboard_url(request.POST.get("when")) + f"#booking-{booking.pk}")


def _dashboard_url(tab: str | None) -> str:
    url = reverse("bookings:list")
    return f"{url}?when={tab}" if tab in selectors.DASHBOARD_TABS and tab != "upcoming" else url
