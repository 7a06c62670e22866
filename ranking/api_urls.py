from django.urls import path

from ranking import api

urlpatterns = [
    path("projects/<slug:slug>/fits/", api.FitListCreate.as_view(), name="api_fits"),
    path("projects/<slug:slug>/fits/<int:fit_id>/", api.FitDetail.as_view(), name="api_fit"),
    path("projects/<slug:slug>/fits/<int:fit_id>/scores/", api.FitScores.as_view(), name="api_fit_scores"),
    path("projects/<slug:slug>/fits/<int:fit_id>/rater-offsets/", api.FitRaterOffsets.as_view(),
         name="api_fit_rater_offsets"),
]
