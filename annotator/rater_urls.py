from django.urls import path

from annotator import api, rater_views

app_name = "rater"

urlpatterns = [
    path("<slug:slug>/", rater_views.flow, name="flow"),
    path("<slug:slug>/consent/", rater_views.consent, name="consent"),
    path("<slug:slug>/demographics/", rater_views.demographics, name="demographics"),
    path("<slug:slug>/instructions/", rater_views.instructions, name="instructions"),
    path("<slug:slug>/task/", rater_views.task, name="task"),
    path("<slug:slug>/done/", rater_views.done, name="done"),
    path("<slug:slug>/image/<int:item_id>/", rater_views.image, name="image"),
    path("<slug:slug>/api/next/", api.RaterNextTask.as_view(), name="api_next"),
    path("<slug:slug>/api/judgments/", api.RaterJudgmentSubmit.as_view(), name="api_judgments"),
    path("<slug:slug>/api/annotations/", api.RaterAnnotationSubmit.as_view(), name="api_annotations"),
    path("<slug:slug>/api/rankings/", api.RaterRankSubmit.as_view(), name="api_rankings"),
]
