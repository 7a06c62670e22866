from django.urls import path

from ranking import report_views

app_name = "ranking_reports"

urlpatterns = [
    path("<slug:slug>/agreement/", report_views.agreement, name="agreement"),
    path("<slug:slug>/agreement/recompute/", report_views.agreement_recompute, name="agreement_recompute"),
    path("<slug:slug>/agreement/reports/<int:report_id>/status/", report_views.agreement_report_status,
         name="agreement_report_status"),
    path("<slug:slug>/datasheet/", report_views.datasheet, name="datasheet"),
    path("<slug:slug>/datasheet.md", report_views.datasheet_markdown, name="datasheet_md"),
    path("<slug:slug>/datasheet.json", report_views.datasheet_json, name="datasheet_json"),
]
