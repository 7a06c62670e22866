"""Content-Security-Policy and Permissions-Policy on every response.

The pages load scripts only from PrefLab's own static files (no inline script: ``script-src 'self'``).
Styles allow ``'unsafe-inline'``: templates set progress-bar widths, heatmap word shades and chart
colours in ``style`` attributes, and a CSS-only injection is far less than a script one. A view may set
its own header; it is then left alone.
"""

from __future__ import annotations

from django.conf import settings

DEFAULT_CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "frame-ancestors 'none'",
    # No form-action: a rater's form may be redirected to the crowd platform's completion URL.
])

DEFAULT_PERMISSIONS_POLICY = ", ".join(f"{feature}=()" for feature in (
    "accelerometer", "autoplay", "camera", "display-capture", "geolocation", "gyroscope", "magnetometer",
    "microphone", "midi", "payment", "publickey-credentials-get", "screen-wake-lock", "serial", "usb",
    "xr-spatial-tracking",
))


class SecurityHeadersMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.csp = getattr(settings, "PREFLAB_CONTENT_SECURITY_POLICY", DEFAULT_CONTENT_SECURITY_POLICY)
        self.permissions = getattr(settings, "PREFLAB_PERMISSIONS_POLICY", DEFAULT_PERMISSIONS_POLICY)

    def __call__(self, request):
        response = self.get_response(request)
        if self.csp:
            response.headers.setdefault("Content-Security-Policy", self.csp)
        if self.permissions:
            response.headers.setdefault("Permissions-Policy", self.permissions)
        return response
