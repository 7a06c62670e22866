from django.urls import path

from ranking import api, calibration_api

urlpatterns = [
    path("projects/<slug:slug>/fits/", api.FitListCreate.as_view(), name="api_fits"),
    path("projects/<slug:slug>/fits/<int:fit_id>/", api.FitDetail.as_view(), name="api_fit"),
    path("projects/<slug:slug>/fits/<int:fit_id>/scores/", api.FitScores.as_view(), name="api_fit_scores"),
    path("projects/<slug:slug>/fits/<int:fit_id>/rater-offsets/", api.FitRaterOffsets.as_view(),
         name="api_fit_rater_offsets"),
    path("projects/<slug:slug>/metrics/", api.MetricList.as_view(), name="api_metrics"),
    path("projects/<slug:slug>/metrics/scores/", api.MetricScores.as_view(), name="api_metric_scores"),
    path("projects/<slug:slug>/metrics/import/", api.MetricImport.as_view(), name="api_metric_import"),
    path("projects/<slug:slug>/metrics/runs/", api.MetricRunListCreate.as_view(), name="api_metric_runs"),
    path("projects/<slug:slug>/metrics/runs/<int:run_id>/", api.MetricRunDetail.as_view(), name="api_metric_run"),
    path("projects/<slug:slug>/calibration/", calibration_api.CalibrationReportLatest.as_view(),
         name="api_calibration"),
]
