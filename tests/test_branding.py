"""An admin gives the organization a logo and an accent colour; meeting types that ask for it show them."""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from PIL import Image

from accounts.branding import contrast_ratio
from accounts.models import Organization
from meetingtypes.models import MeetingType, MeetingTypeHost

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def image_upload(fmt: str = "PNG", size=(300, 120), name: str | None = None, colour="#1d4ed8") -> SimpleUploadedFile:
    data = io.BytesIO()
    image = Image.new("RGB", size, colour)
    image.save(data, format=fmt)
    extension = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp", "GIF": "gif", "BMP": "bmp"}[fmt]
    return SimpleUploadedFile(name or f"logo.{extension}", data.getvalue(), content_type=f"image/{fmt.lower()}")


def save_settings(client, **fields):
    data = {"name": "Acme Consulting", "accent_color": "", **fields}
    return client.post(reverse("organization:settings"), data)


def stored_files(media_root) -> list:
    return sorted(path for path in media_root.rglob("*") if path.is_file())


def test_the_admin_uploads_a_logo_and_it_is_stored_under_a_random_name_and_served_as_an_image(login, admin, media_root):
    client = login(admin)
    response = save_settings(client, logo=image_upload("PNG"))

    assert response.status_code == 302
    organization = Organization.objects.get(pk=admin.organization_id)
    assert re.fullmatch(r"logos/[A-Za-z0-9_-]{24}\.png", organization.logo.name)
    assert [path.name for path in stored_files(media_root)] == [organization.logo.name.split("/")[1]]

    served = client.get(organization.logo_url)
    assert served.status_code == 200
    assert served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served["Content-Security-Policy"]
    assert Image.open(io.BytesIO(b"".join(served.streaming_content))).format == "PNG"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_jpeg_and_webp_logos_are_accepted_too(login, admin, fmt):
    response = save_settings(login(admin), logo=image_upload(fmt))

    assert response.status_code == 302
    organization = Organization.objects.get(pk=admin.organization_id)
    assert organization.logo.name.endswith({"JPEG": ".jpg", "WEBP": ".webp"}[fmt])


def test_a_big_logo_is_scaled_down_and_its_metadata_is_not_kept(login, admin, media_root):
    data = io.BytesIO()
    Image.new("RGB", (3000, 1000), "#1d4ed8").save(data, format="JPEG", comment=b"secret-camera-notes")
    upload = SimpleUploadedFile("big.jpg", data.getvalue(), content_type="image/jpeg")

    save_settings(login(admin), logo=upload)

    stored = stored_files(media_root)[0]
    assert Image.open(stored).size == (1200, 400)
    assert b"secret-camera-notes" not in stored.read_bytes()


@pytest.mark.parametrize(
    "upload, message",
    [
        (
            SimpleUploadedFile(
                "logo.svg",
                b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                content_type="image/svg+xml",
            ),
            "Upload a PNG, JPEG or WebP image.",
        ),
        (SimpleUploadedFile("logo.png", b"<html>not a picture</html>", content_type="image/png"), "PNG, JPEG or WebP"),
        (image_upload("GIF", name="logo.png"), "PNG, JPEG or WebP"),
        (SimpleUploadedFile("logo.png", b"\x89PNG" + b"0" * (1024 * 1024), content_type="image/png"), "at most 1 MB"),
    ],
    ids=["svg", "html-named-png", "gif", "over-1-mb"],
)
def test_anything_but_a_small_png_jpeg_or_webp_is_refused_and_nothing_changes(
    login, admin, media_root, upload, message
):
    response = save_settings(login(admin), name="Should Not Be Saved", logo=upload)

    assert response.status_code == 200
    assert message in response.content.decode()
    organization = Organization.objects.get(pk=admin.organization_id)
    assert organization.name == "Acme Consulting" and not organization.logo
    assert stored_files(media_root) == []


def test_a_replaced_logo_is_deleted_and_its_old_address_answers_404(
    login, admin, media_root, django_capture_on_commit_callbacks
):
    client = login(admin)
    with django_capture_on_commit_callbacks(execute=True):
        save_settings(client, logo=image_upload("PNG"))
    old_url = Organization.objects.get(pk=admin.organization_id).logo_url

    with django_capture_on_commit_callbacks(execute=True):
        save_settings(client, logo=image_upload("PNG", colour="#166534"))

    organization = Organization.objects.get(pk=admin.organization_id)
    assert organization.logo_url != old_url
    assert client.get(old_url).status_code == 404
    assert [path.name for path in stored_files(media_root)] == [organization.logo.name.split("/")[1]]

    with django_capture_on_commit_callbacks(execute=True):
        save_settings(client, remove_logo="on")
    assert not Organization.objects.get(pk=admin.organization_id).logo
    assert stored_files(media_root) == []


def test_the_logo_address_serves_only_current_logos(client):
    for name in ["..%2F..%2Ftsp%2Fsettings.py", "abc.png", "A" * 24 + ".svg", "A" * 24 + ".png"]:
        assert client.get(f"/media/logos/{name}").status_code == 404


def test_an_accent_colour_must_be_readable_on_white(login, admin):
    client = login(admin)

    too_light = save_settings(client, accent_color="#facc15")
    assert too_light.status_code == 200
    assert "too light to read" in too_light.content.decode()
    not_a_colour = save_settings(client, accent_color="blue")
    assert "six hex digits" in not_a_colour.content.decode()
    assert Organization.objects.get(pk=admin.organization_id).accent_color == ""

    assert save_settings(client, accent_color="#1D4ED8").status_code == 302
    assert Organization.objects.get(pk=admin.organization_id).accent_color == "#1d4ed8"


def test_accepted_colours_keep_text_readable_on_their_light_tint_too():
    organization = Organization(accent_color="#1d4ed8")
    assert contrast_ratio(organization.accent_color, "#ffffff") >= 4.5
    assert contrast_ratio(organization.accent_color, organization.accent_tint) >= 4.5


def test_members_cannot_change_the_organization(login, member):
    client = login(member)
    assert client.get(reverse("organization:settings")).status_code == 403
    assert save_settings(client, name="Hijacked").status_code == 403
    assert Organization.objects.get(pk=member.organization_id).name == "Acme Consulting"


def test_only_admins_see_organization_in_the_navigation(login, admin, member):
    settings_url = reverse("organization:settings")
    assert settings_url in login(admin).get(reverse("members:list")).content.decode()
    assert settings_url not in login(member).get(reverse("members:list")).content.decode()


def _meeting_type(organization, host, *, show_branding: bool) -> MeetingType:
    meeting_type = MeetingType.objects.create(
        organization=organization,
        name="Intro call",
        slug="intro",
        location="phone",
        location_detail="+1 555 0100",
        show_branding=show_branding,
    )
    MeetingTypeHost.objects.create(meeting_type=meeting_type, member=host, position=0)
    return meeting_type


def test_the_booking_page_shows_logo_and_colour_only_when_the_meeting_type_asks_for_them(client, login, admin):
    save_settings(login(admin), accent_color="#166534", logo=image_upload("PNG"))
    organization = Organization.objects.get(pk=admin.organization_id)
    branded = _meeting_type(organization, admin, show_branding=True)
    page = client.get(reverse("bookings:public_page", args=[organization.slug, branded.slug])).content.decode()
    assert f'src="{organization.logo_url}"' in page
    assert "--accent: #166534" in page

    branded.show_branding = False
    branded.save()
    plain = client.get(reverse("bookings:public_page", args=[organization.slug, branded.slug])).content.decode()
    assert organization.logo_url not in plain and "#166534" not in plain


def test_the_meeting_type_form_offers_the_branding_option(login, admin):
    page = login(admin).get(reverse("meetingtypes:create")).content.decode()
    assert "Show our logo and colour on the booking page" in page
