from django.urls import path

from ranking import calibration_views, release_views, round_views, views

app_name = "ranking"

urlpatterns = [
    path("<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("<slug:slug>/leaderboard/models.csv", views.model_leaderboard_csv, name="model_leaderboard_csv"),
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
    path("<slug:slug>/rounds/", round_views.rounds, name="rounds"),
    path("<slug:slug>/rounds/schedule/", round_views.round_schedule, name="round_schedule"),
    path("<slug:slug>/rounds/<int:number>/", round_views.round_detail, name="round"),
    path("<slug:slug>/rounds/<int:number>/start/", round_views.round_start, name="round_start"),
    path("<slug:slug>/rounds/<int:number>/close/", round_views.round_close, name="round_close"),
    path("<slug:slug>/rounds/<int:number>/delete/", round_views.round_delete, name="round_delete"),
    path("<slug:slug>/rounds/<int:number>/compute/", round_views.round_compute, name="round_compute"),
    path("<slug:slug>/rounds/<int:number>/status/", round_views.round_result_status, name="round_status"),
    path("<slug:slug>/rounds/<int:number>/rank/", round_views.round_rank, name="round_rank"),
    path("<slug:slug>/releases/", release_views.release_list, name="releases"),
    path("<slug:slug>/releases/<int:release_id>/download/", release_views.release_download, name="release_download"),
    path("<slug:slug>/releases/<int:release_id>/status/", release_views.release_status, name="release_status"),
    path("<slug:slug>/gates/", round_views.gates, name="gates"),
    path("<slug:slug>/gates/decisions.csv", round_views.gate_decisions_csv, name="gate_decisions_csv"),
    path("<slug:slug>/gates/<int:gate_id>/threshold/", round_views.gate_threshold, name="gate_threshold"),
    path("<slug:slug>/gates/<int:gate_id>/active/", round_views.gate_active, name="gate_active"),
    path("<slug:slug>/gates/proposals/<int:proposal_id>/apply/", round_views.proposal_apply, name="proposal_apply"),
    path("<slug:slug>/gates/proposals/<int:proposal_id>/reject/", round_views.proposal_reject,
         name="proposal_reject"),
]
