from django.urls import path

from annotator import api, crowd_views
from annotator.export_views import JudgmentExport

urlpatterns = [
    path("hooks/prolific/<slug:slug>/", crowd_views.ProlificWebhook.as_view(), name="api_prolific_webhook"),
    path("projects/", api.ProjectListCreate.as_view(), name="api_projects"),
    path("projects/<slug:slug>/", api.ProjectDetail.as_view(), name="api_project"),
    path("projects/<slug:slug>/items/", api.ItemListUpload.as_view(), name="api_items"),
    path("projects/<slug:slug>/items/<int:item_id>/image/", api.ItemImage.as_view(), name="api_item_image"),
    path("projects/<slug:slug>/instructions/", api.InstructionListCreate.as_view(), name="api_instructions"),
    path("projects/<slug:slug>/consent/", api.ConsentListCreate.as_view(), name="api_consent"),
    path("projects/<slug:slug>/tasks/", api.TaskList.as_view(), name="api_tasks"),
    path("projects/<slug:slug>/tasks/generate/", api.TaskGenerate.as_view(), name="api_tasks_generate"),
    path("projects/<slug:slug>/judgments/", api.JudgmentList.as_view(), name="api_judgments"),
    path("projects/<slug:slug>/judgments/export/", JudgmentExport.as_view(), name="api_judgments_export"),
    path("projects/<slug:slug>/raters/", api.RaterList.as_view(), name="api_raters"),
    path("projects/<slug:slug>/checks/", api.CheckListCreate.as_view(), name="api_checks"),
    path("projects/<slug:slug>/checks/<int:check_id>/retire/", api.CheckRetire.as_view(), name="api_check_retire"),
    path("projects/<slug:slug>/progress/", api.Progress.as_view(), name="api_progress"),
    path("projects/<slug:slug>/feedback/", api.ProjectFeedbackList.as_view(), name="api_project_feedback"),
    path("projects/<slug:slug>/items/<int:item_id>/feedback/", api.ItemFeedbackDetail.as_view(),
         name="api_item_feedback"),
    path("projects/<slug:slug>/items/<int:item_id>/heatmaps/<str:kind>/<str:fmt>/", api.ItemHeatmap.as_view(),
         name="api_item_heatmap"),
]
