from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from annotator import login_views, rater_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/login/", login_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    path("projects/", include("ranking.urls")),
    path("projects/", include("ranking.report_urls")),
    path("projects/", include("annotator.urls")),
    path("join/<slug:slug>/<str:token>/", rater_views.join, name="join"),
    path("r/", include("annotator.rater_urls")),
    path("api/", include("annotator.api_urls")),
    path("api/", include("ranking.api_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api_schema"),
    # The split view serves Swagger UI's start-up script as a file: no inline script under our CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api_schema"), name="api_docs"),
]

handler400 = "config.error_views.bad_request"
handler403 = "config.error_views.permission_denied"
handler404 = "config.error_views.page_not_found"
handler500 = "config.error_views.server_error"
