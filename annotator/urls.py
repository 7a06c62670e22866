from django.urls import path

from annotator import crowd_views, views

app_name = "annotator"

urlpatterns = [
    path("", views.project_list, name="project_list"),
    path("new/", views.project_create, name="project_create"),
    path("<slug:slug>/", views.project_detail, name="project_detail"),
    path("<slug:slug>/settings/", views.project_settings, name="settings"),
    path("<slug:slug>/team/", views.team, name="team"),
    path("<slug:slug>/team/<int:membership_id>/role/", views.member_change, name="member_change"),
    path("<slug:slug>/team/<int:membership_id>/remove/", views.member_remove, name="member_remove"),
    path("<slug:slug>/raters/", views.raters, name="raters"),
    path("<slug:slug>/raters.csv", views.raters_csv, name="raters_csv"),
    path("<slug:slug>/raters/<str:public_id>/exclusion/", views.rater_exclusion, name="rater_exclusion"),
    path("<slug:slug>/raters/prolific/", crowd_views.prolific_settings, name="prolific_settings"),
    path("<slug:slug>/raters/places-release/", crowd_views.places_release, name="places_release"),
    path("<slug:slug>/items/", views.items, name="items"),
    path("<slug:slug>/items/<int:item_id>/", views.item_detail, name="item_detail"),
    path("<slug:slug>/items/<int:item_id>/edit/", views.item_edit, name="item_edit"),
    path("<slug:slug>/items/<int:item_id>/retire/", views.item_retire, name="item_retire"),
    path("<slug:slug>/items/<int:item_id>/restore/", views.item_restore, name="item_restore"),
    path("<slug:slug>/items/<int:item_id>/image/", views.item_image, name="item_image"),
    path("<slug:slug>/feedback/", views.feedback, name="feedback"),
    path("<slug:slug>/consent/", views.consent, name="consent"),
    path("<slug:slug>/instructions/", views.instructions, name="instructions"),
    path("<slug:slug>/tasks/", views.tasks, name="tasks"),
    path("<slug:slug>/checks/", views.checks, name="checks"),
    path("<slug:slug>/checks/<int:check_id>/retire/", views.check_retire, name="check_retire"),
]
