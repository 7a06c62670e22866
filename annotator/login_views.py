"""The login page, rate-limited per client address and locked per (username, address) after failures."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import views as auth_views

from annotator.throttles import (
    LoginThrottle,
    client_ip,
    login_failure_record,
    login_failures_clear,
    login_locked,
)


class LoginView(auth_views.LoginView):
    """Django's login view; a POST is refused with 429 while its client is throttled or its
    (username, address) pair is locked out (``PREFLAB_LOGIN_MAX_FAILURES`` failures lock it for
    ``PREFLAB_LOGIN_LOCKOUT_S`` seconds)."""

    def post(self, request, *args, **kwargs):
        username = request.POST.get("username", "")[:150]
        ip = client_ip(request)
        if login_locked(username=username, ip=ip):
            return self._refused("Too many failed attempts for this account from here. Try again in "
                                 f"{_minutes(settings.PREFLAB_LOGIN_LOCKOUT_S)}.")
        if not LoginThrottle().allow_request(request, self):
            return self._refused("Too many login attempts from here. Please wait a minute and try again.")
        response = super().post(request, *args, **kwargs)
        if response.status_code == 302:
            login_failures_clear(username=username, ip=ip)
        elif login_failure_record(username=username, ip=ip):
            return self._refused("Too many failed attempts for this account from here. Try again in "
                                 f"{_minutes(settings.PREFLAB_LOGIN_LOCKOUT_S)}.")
        return response

    def _refused(self, message: str):
        form = self.get_form_class()(self.request)  # unbound: the password is never echoed back
        context = self.get_context_data(form=form)
        context["refusal"] = message
        return self.render_to_response(context, status=429)


def _minutes(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
