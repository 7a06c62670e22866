from django.urls import path

from ranking import views

app_name = "ranking"

urlpatterns = [
    path("<slug:slug>/leaderboard/", views.leaderboard, name="leaderboard"),
    path("<slug:slug>/fits/", views.fits, name="fits"),
    path("<slug:slug>/fits/<int:fit_id>/status/", views.fit_status, name="fit_status"),
    path("<slug:slug>/raters/<str:public_id>/ranking/", views.rater_ranking, name="rater_ranking"),
]
