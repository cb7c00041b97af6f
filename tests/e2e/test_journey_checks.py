"""The journeys' own checks catch what they are there to catch: a page wider than a phone, a serious
accessibility problem, a page visited but never checked, a Content-Security-Policy violation."""

import pytest

from .conftest import Journey

pytestmark = [pytest.mark.browser]

FINE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Fine</title></head>
<body><main><h1>Fine</h1><p>Fits on a phone.</p><button type="button">Save</button></main></body></html>"""

BROKEN = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Broken</title></head>
<body><main><h1>Broken</h1><div class="strip" style="width:600px">A 600 px strip</div>
<button type="button"></button></main></body></html>"""


@pytest.fixture
def own_journey(new_context):
    """A journey whose problems this test reads itself (the `journey` fixture would fail the test)."""
    return Journey(new_context=new_context, site_url="http://checks.invalid")


def test_a_page_that_fits_a_phone_and_passes_axe_gives_no_problem(own_journey):
    page = own_journey.open()
    page.set_content(FINE)
    own_journey.check(page)
    assert own_journey.problems == []


def test_a_page_wider_than_a_phone_and_a_button_without_a_name_are_both_reported(own_journey):
    page = own_journey.open()
    page.set_content(BROKEN)
    own_journey.check(page)

    overflow = [problem for problem in own_journey.problems if "px wide at 390 px" in problem]
    assert len(overflow) == 1 and "div.strip" in overflow[0], own_journey.problems
    unnamed = [problem for problem in own_journey.problems if "button-name" in problem]
    assert len(unnamed) == 1 and "critical" in unnamed[0], own_journey.problems
    assert page.viewport_size["width"] == 1280, "the page is given its width back"


def test_a_page_of_the_site_that_was_visited_but_not_checked_is_reported(own_journey):
    own_journey._remember("http://checks.invalid/app/members/")
    own_journey._remember("http://checks.invalid/app/bookings/")
    own_journey._remember("http://checks.invalid/sandbox/zoom/control/")
    own_journey.checked.add("/app/members/")
    assert own_journey.unchecked_pages() == ["/app/bookings/"]


UNDER_OUR_POLICY = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="script-src 'self'; style-src 'self'">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Inline</title></head>
<body><main><h1 style="color: red">Inline</h1><script>document.title = "ran";</script></main></body></html>"""


def test_an_inline_script_or_style_refused_by_the_policy_is_reported(own_journey):
    page = own_journey.open()
    page.set_content(UNDER_OUR_POLICY)
    own_journey.check(page)

    refused = [problem for problem in own_journey.problems if "Content-Security-Policy violation" in problem]
    assert any("script" in problem for problem in refused), own_journey.problems
    assert any("style" in problem for problem in refused), own_journey.problems
    assert page.title() == "Inline"  # the script did not run
