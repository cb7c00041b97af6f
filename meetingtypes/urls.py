from django.urls import path

from . import views

app_name = "meetingtypes"

urlpatterns = [
    path("app/meeting-types/", views.meeting_type_list, name="list"),
    path("app/meeting-types/new/", views.meeting_type_create, name="create"),
    path("app/meeting-types/<int:pk>/edit/", views.meeting_type_edit, name="edit"),
    path("app/meeting-types/<int:pk>/toggle/", views.meeting_type_toggle, name="toggle"),
    path("app/meeting-types/<int:pk>/hosts/<int:member_pk>/up/", views.meeting_type_host_up, name="host_up"),
]
