"""Rate limits: who the client is, and the throttles and login lockout built on it.

A client is its socket address (``REMOTE_ADDR``). ``X-Forwarded-For`` is read only when the request
comes from a proxy listed in ``PREFLAB_TRUSTED_PROXIES`` (addresses or CIDR networks; empty by default),
and then the client is the right-most address in the header that is not itself a trusted proxy — the
left part of the header is whatever the client chose to send. DRF's own ``get_ident`` trusts the
header from anyone, which let a script make 100 raters in a row by inventing addresses.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import math

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle, UserRateThrottle

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip())


def trusted_proxies() -> tuple[Network, ...]:
    return _networks(tuple(getattr(settings, "PREFLAB_TRUSTED_PROXIES", ()) or ()))


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(address, networks: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in networks)


def client_ip(request) -> str:
    """The client's address: ``REMOTE_ADDR``, or the nearest untrusted hop of ``X-Forwarded-For`` when
    ``REMOTE_ADDR`` is a trusted proxy."""
    meta = getattr(request, "META", request)
    remote = meta.get("REMOTE_ADDR", "") or ""
    networks = trusted_proxies()
    if not networks or not _trusted(_address(remote), networks):
        return remote
    hops = [hop.strip() for hop in meta.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:  # garbage in the header: stop at the last hop we could trust
            return remote
        if not _trusted(address, networks):
            return str(address)
    return str(_address(hops[0])) if hops else remote


class ClientIPMixin:
    """A DRF throttle that identifies anonymous clients by :func:`client_ip`."""

    def get_ident(self, request):
        return client_ip(request)


class JoinThrottle(ClientIPMixin, SimpleRateThrottle):
    """New raters per client address (``THROTTLE_JOIN``)."""

    scope = "join"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class _WindowThrottle(SimpleRateThrottle):
    """The rate counted in fixed windows of its duration (a minute for "240/minute"), starting at a client's
    first request: one small cache value and constant work per request, whatever the rate. DRF's
    SimpleRateThrottle keeps the time of every request in the window — a list read, rewritten and pickled on
    every request, long at the rates raters answer at. A client may send up to twice the rate across the
    boundary of two windows."""

    # its own keys: a value DRF's throttle left under the old format (a list of times) is never read as a window
    cache_format = "throttle_window_%(scope)s_%(ident)s"

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        start, count = self.cache.get(self.key, None) or (self.now, 0)
        if self.now - start >= self.duration:
            start, count = self.now, 0
        self.window_start = start
        if count >= self.num_requests:
            return False
        self.cache.set(self.key, (start, count + 1), max(1, math.ceil(start + self.duration - self.now)))
        return True

    def wait(self):
        return max(0.0, self.window_start + self.duration - self.now)


class _PerRaterThrottle(ClientIPMixin, _WindowThrottle):
    """Per rater once the rater is known (``request.rater``), else per client address."""

    def get_cache_key(self, request, view):
        rater = getattr(request, "rater", None)
        ident = f"r{rater.pk}" if rater else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}


class RaterThrottle(_PerRaterThrottle):
    """A rater's answers (``THROTTLE_SUBMIT``)."""

    scope = "judgment_submit"


class NextTaskThrottle(_PerRaterThrottle):
    """A rater's next-task requests (``THROTTLE_NEXT``)."""

    scope = "next_task"


class WebhookThrottle(ClientIPMixin, SimpleRateThrottle):
    """Calls to a crowd platform's webhook per client address (``THROTTLE_WEBHOOK``)."""

    scope = "webhook"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ResearcherThrottle(ClientIPMixin, UserRateThrottle):
    """The researcher API, per user (per client address when anonymous) (``THROTTLE_API``)."""

    scope = "user"


class LoginThrottle(ClientIPMixin, SimpleRateThrottle):
    """Login attempts per client address, whatever the username (``THROTTLE_LOGIN``)."""

    scope = "login"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


# Login lockout: PREFLAB_LOGIN_MAX_FAILURES failed logins for one username from one address lock that
# pair out for PREFLAB_LOGIN_LOCKOUT_S seconds (a correct password is refused too while it lasts).


def _pair_key(kind: str, username: str, ip: str) -> str:
    digest = hashlib.sha256(f"{username.strip().lower()}\0{ip}".encode()).hexdigest()[:32]
    return f"preflab:login:{kind}:{digest}"


def login_locked(*, username: str, ip: str) -> bool:
    return cache.get(_pair_key("lock", username, ip)) is not None


def login_failure_record(*, username: str, ip: str) -> bool:
    """Count a failed login; lock the (username, address) pair when it reaches the limit. True if locked."""
    period = settings.PREFLAB_LOGIN_LOCKOUT_S
    key = _pair_key("fail", username, ip)
    cache.add(key, 0, timeout=period)
    try:
        failures = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.set(key, 1, timeout=period)
        failures = 1
    if failures >= settings.PREFLAB_LOGIN_MAX_FAILURES:
        cache.set(_pair_key("lock", username, ip), 1, timeout=period)
        cache.delete(key)
        return True
    return False


def login_failures_clear(*, username: str, ip: str) -> None:
    cache.delete(_pair_key("fail", username, ip))
