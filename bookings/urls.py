from django.urls import path

from . import views

app_name = "bookings"

# The public pages are matched last (see tsp/urls.py) so they never shadow the app's own paths.
dashboard_urlpatterns = [
    path("app/bookings/", views.booking_list, name="list"),
    path("app/bookings/<int:pk>/cancel/", views.booking_cancel, name="staff_cancel"),
    path("app/bookings/<int:pk>/video-link/", views.video_link, name="video_link"),
    path("app/bookings/<int:pk>/resend/", views.booking_resend, name="resend"),
    path("booking/<uuid:uid>/<str:token>/", views.manage, name="manage"),
    path("booking/<uuid:uid>/<str:token>/cancel/", views.cancel, name="cancel"),
    path("booking/<uuid:uid>/<str:token>/invite.ics", views.calendar_file, name="calendar_file"),
    path("booking/<uuid:uid>/<str:token>/reschedule/", views.reschedule, name="reschedule"),
    path("booking/<uuid:uid>/<str:token>/reschedule/slots.json", views.reschedule_slots, name="reschedule_slots"),
    path("booking/<uuid:uid>/<str:token>/reschedule/confirm/", views.reschedule_confirm, name="reschedule_confirm"),
]

public_urlpatterns = [
    path("<slug:org_slug>/", views.organization_page, name="organization"),
    path("<slug:org_slug>/<slug:slug>/", views.public_page, name="public_page"),
    path("<slug:org_slug>/<slug:slug>/slots.json", views.slots_json, name="slots"),
    path("<slug:org_slug>/<slug:slug>/book/", views.book, name="book"),
]

urlpatterns = dashboard_urlpatterns + public_urlpatterns
