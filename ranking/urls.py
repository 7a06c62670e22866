from django.urls import path

from ranking import calibration_views, views

app_name = "ranking"

urlpatterns = [
    path("<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("<slug:slug>/fits/", views.fits, name="fits"),
    path("<slug:slug>/fits/<int:fit_id>/status/", views.fit_status, name="fit_status"),
    path("<slug:slug>/raters/<str:public_id>/ranking/", views.rater_ranking, name="rater_ranking"),
    path("<slug:slug>/metrics/", views.metrics, name="metrics"),
    path("<slug:slug>/metrics/import/", views.metrics_import, name="metrics_import"),
    path("<slug:slug>/metrics/compute/", views.metrics_compute, name="metrics_compute"),
    path("<slug:slug>/metrics/runs/<int:run_id>/status/", views.metric_run_status, name="metric_run_status"),
    path("<slug:slug>/metrics/scores.csv", views.metric_scores_csv, name="metric_scores_csv"),
    path("<slug:slug>/calibration/", calibration_views.calibration, name="calibration"),
    path("<slug:slug>/calibration/compute/", calibration_views.calibration_compute, name="calibration_compute"),
    path("<slug:slug>/calibration/reports/<int:report_id>/status/", calibration_views.calibration_report_status,
         name="calibration_report_status"),
]
