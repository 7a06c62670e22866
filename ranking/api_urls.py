from django.urls import path

from ranking import api, calibration_api, round_api

urlpatterns = [
    path("projects/<slug:slug>/fits/", api.FitListCreate.as_view(), name="api_fits"),
    path("projects/<slug:slug>/models/", api.ModelLeaderboard.as_view(), name="api_model_leaderboard"),
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
    path("projects/<slug:slug>/rounds/", round_api.RoundList.as_view(), name="api_rounds"),
    path("projects/<slug:slug>/rounds/<int:number>/", round_api.RoundDetail.as_view(), name="api_round"),
    path("projects/<slug:slug>/rounds/<int:number>/start/", round_api.RoundStart.as_view(), name="api_round_start"),
    path("projects/<slug:slug>/rounds/<int:number>/close/", round_api.RoundClose.as_view(), name="api_round_close"),
    path("projects/<slug:slug>/rounds/<int:number>/result/", round_api.RoundResultRequest.as_view(),
         name="api_round_result"),
    path("projects/<slug:slug>/gates/", round_api.GateList.as_view(), name="api_gates"),
    path("projects/<slug:slug>/gates/history/", round_api.GateHistory.as_view(), name="api_gate_history"),
    path("projects/<slug:slug>/gates/<int:gate_id>/threshold/", round_api.GateThreshold.as_view(),
         name="api_gate_threshold"),
    path("projects/<slug:slug>/gate-proposals/<int:proposal_id>/apply/", round_api.ProposalApply.as_view(),
         name="api_proposal_apply"),
    path("projects/<slug:slug>/gate-proposals/<int:proposal_id>/reject/", round_api.ProposalReject.as_view(),
         name="api_proposal_reject"),
]
