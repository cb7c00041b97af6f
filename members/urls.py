from django.urls import path

from . import views

app_name = "members"

urlpatterns = [
    path("app/members/", views.member_list, name="list"),
    path("app/members/new/", views.member_create, name="create"),
    path("app/members/<int:pk>/edit/", views.member_edit, name="edit"),
    path("app/members/<int:pk>/deactivate/", views.member_deactivate, name="deactivate"),
    path("app/members/<int:pk>/reactivate/", views.member_reactivate, name="reactivate"),
    path("app/members/<int:pk>/invite/", views.member_resend_invitation, name="resend_invitation"),
    path("app/profile/", views.profile, name="profile"),
    path("app/availability/hours/", views.weekly_hours, name="weekly_hours"),
    path("app/availability/overrides/", views.date_override_add, name="date_override_add"),
    path("app/availability/overrides/<str:day>/remove/", views.date_override_remove, name="date_override_remove"),
    path("invite/<str:token>/", views.accept_invitation, name="accept_invitation"),
]
