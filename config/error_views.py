"""Django's error views, answering in the API's JSON error shape on API paths.

The API's own views answer through ``annotator.api.exception_handler``; these cover what happens before
or outside them (an unknown URL under ``/api/``, a request Django itself refuses, a crash in middleware).
Pages keep Django's HTML error pages.
"""

from __future__ import annotations

import re

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults

#: The researcher API (``/api/…``) and the rater API (``/r/<slug>/api/…``).
API_PATH = re.compile(r"^/(?:api/|r/[^/]+/api/)")


def is_api_path(request: HttpRequest) -> bool:
    return bool(API_PATH.match(request.path_info or request.path))


def _json_error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def bad_request(request: HttpRequest, exception, template_name: str = "400.html") -> HttpResponse:
    if is_api_path(request):
        return _json_error("bad_request", "The request was refused as malformed.", 400)
    return defaults.bad_request(request, exception, template_name)


def permission_denied(request: HttpRequest, exception, template_name: str = "403.html") -> HttpResponse:
    if is_api_path(request):
        return _json_error("permission_denied", "You do not have permission to do this.", 403)
    return defaults.permission_denied(request, exception, template_name)


def page_not_found(request: HttpRequest, exception, template_name: str = "404.html") -> HttpResponse:
    if is_api_path(request):
        return _json_error("not_found", "Not found: nothing is at this address.", 404)
    return defaults.page_not_found(request, exception, template_name)


def server_error(request: HttpRequest, template_name: str = "500.html") -> HttpResponse:
    if is_api_path(request):
        return _json_error("server_error", "Something went wrong on our side; the error was logged. Please try "
                                           "again later.", 500)
    return defaults.server_error(request, template_name)
