from django.urls import path

from ranking import report_views

app_name = "ranking_reports"

urlpatterns = [
    path("<slug:slug>/agreement/", report_views.agreement, name="agreement"),
    path("<slug:slug>/datasheet/", report_views.datasheet, name="datasheet"),
    path("<slug:slug>/datasheet.md", report_views.datasheet_markdown, name="datasheet_md"),
    path("<slug:slug>/datasheet.json", report_views.datasheet_json, name="datasheet_json"),
]
