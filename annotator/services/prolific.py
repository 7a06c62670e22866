"""Prolific: submission status changes from its webhook, and giving back the places of participants who left.

Prolific calls a subscribed URL with a JSON body such as ``{"event_type": "submission.status.change",
"resource_id": <submission id>, "participant_id": <PID>, "status": "RETURNED"}`` and three headers:
``X-Prolific-Request-Timestamp`` (UNIX seconds), ``X-Prolific-Request-Signature`` (base64 of the
HMAC-SHA256 of timestamp + raw body under the workspace's secret) and ``X-Event-ID`` (the same on every
retry of one event). :func:`prolific_event_receive` verifies the signature against the project's secret
(constant-time), refuses a timestamp more than :data:`MAX_SKEW_S` away from now (a replayed request),
stores each event once (a retry of a stored event changes nothing and is answered as a duplicate; so is the
same signed request resent under another ``X-Event-ID``, which the signature does not cover) and
records the participant's new status on their rater. A call for a slug no project has, or for a project with no
secret, is refused like a wrongly signed one (403 ``signature_invalid``, the same words): the webhook does not
tell which projects exist.

Participants who RETURNED, TIMED-OUT or were REJECTED hold places they will not fill.
:func:`annotator.services.quality.rater_places_release` gives them back: the rater's open assignment expires,
each task they answered gets its place back (its ``n_assigned`` drops by one, so another rater is handed it),
and the rater is excluded from fits and statistics with the reason recorded (their answers stay stored:
nothing is ever deleted, and including the rater again brings them back). A place is given back once
(``Assignment.holds_place``); the batch release by status skips raters released before.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from annotator.errors import Forbidden, InvalidInput
from annotator.models import Project, ProlificEvent, Rater
from annotator.services.quality import rater_places_release

#: Submission statuses whose participants will not come back: their places can be given to others.
RELEASABLE_STATUSES = ("RETURNED", "TIMED-OUT", "REJECTED")
#: How far the request's timestamp may be from the server's clock (seconds) before it counts as a replay.
MAX_SKEW_S = 300
SIGNATURE_HEADER = "X-Prolific-Request-Signature"
TIMESTAMP_HEADER = "X-Prolific-Request-Timestamp"
EVENT_ID_HEADER = "X-Event-ID"
MAX_PARTICIPANT_IDS = 10_000


def prolific_signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """Prolific's signature of a request: base64(HMAC-SHA256(secret, timestamp + body))."""
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class EventReceipt:
    event: ProlificEvent
    duplicate: bool


#: Signs the calls for a project that takes none (unknown, or no secret set), so that they cost what a wrong
#: signature costs; no call can be signed with it (it is made afresh by every process and never shown).
_NO_SECRET = secrets.token_urlsafe(32)
_NOT_SIGNED = ("The request is not signed with this project's Prolific webhook secret (or the project takes no "
               "webhook calls: no secret is set).")


def prolific_event_receive(*, project: Project | None, body: bytes, signature: str, timestamp: str, event_id: str,
                           now: float | None = None) -> EventReceipt:
    """Verify, store (once) and apply one webhook call. Raises Forbidden on a bad or stale signature and
    InvalidInput on a body that is not a JSON object; nothing is stored then.

    ``project`` None (no project has the slug) and a project without a secret are refused exactly as a wrong
    signature is, after the same work: the answer does not tell which slugs exist or which projects take calls.
    """
    secret = (project.prolific_webhook_secret if project is not None else "") or _NO_SECRET
    if not signature or not timestamp:
        raise Forbidden(f"The {SIGNATURE_HEADER} and {TIMESTAMP_HEADER} headers are required.",
                        code="signature_missing")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise Forbidden(f"{TIMESTAMP_HEADER} must be UNIX seconds.", code="signature_invalid") from None
    expected = prolific_signature(secret=secret, timestamp=timestamp, body=body)
    if not hmac.compare_digest(expected.encode(), signature.strip().encode()) or secret is _NO_SECRET:
        raise Forbidden(_NOT_SIGNED, code="signature_invalid")
    if abs((time.time() if now is None else now) - sent_at) > MAX_SKEW_S:
        raise Forbidden(f"The request's timestamp is more than {MAX_SKEW_S} s from now (a replayed request?).",
                        code="signature_stale")
    event_id = (event_id or "").strip()
    if not event_id or len(event_id) > 64:
        raise InvalidInput(f"The {EVENT_ID_HEADER} header is required (at most 64 characters).", field=EVENT_ID_HEADER)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInput("The body must be JSON.", field="body") from None
    if not isinstance(payload, dict):
        raise InvalidInput("The body must be a JSON object.", field="body")
    fields = {name: payload.get(name) for name in ("event_type", "resource_id", "participant_id", "status")}
    for name, value in fields.items():
        if value is not None and (not isinstance(value, str) or len(value) > 64):
            raise InvalidInput(f"{name} must be a string of at most 64 characters.", field=name)
    fields = {name: value or "" for name, value in fields.items()}

    # the signature covers the timestamp and the body, not X-Event-ID: the same signed request under another
    # event id is a replay, and is answered like a retry
    digest = hashlib.sha256(timestamp.encode() + b"\n" + body).hexdigest()
    same = Q(event_id=event_id) | Q(request_digest=digest)
    stored = ProlificEvent.objects.filter(same, project=project).first()
    if stored is not None:
        return EventReceipt(event=stored, duplicate=True)
    try:
        with transaction.atomic():
            event = ProlificEvent.objects.create(project=project, event_id=event_id, request_digest=digest,
                                                 payload=payload, **fields)
            event.outcome = _apply(project=project, event=event)
            event.save(update_fields=["outcome", "rater"])
    except IntegrityError:  # the same event (or request) delivered twice at once: the other delivery stored it
        return EventReceipt(event=ProlificEvent.objects.filter(same, project=project).first(), duplicate=True)
    return EventReceipt(event=event, duplicate=False)


def _apply(*, project: Project, event: ProlificEvent) -> str:
    if event.event_type != "submission.status.change":
        return f"ignored: {event.event_type or 'no event_type'} events change nothing here"
    if not event.participant_id or not event.status:
        return "ignored: participant_id or status missing"
    rater = Rater.objects.select_for_update().filter(project=project, prolific_pid=event.participant_id).first()
    if rater is None:
        return "ignored: no rater with this participant id in this project"
    event.rater = rater
    rater.crowd_status = event.status.upper()
    rater.crowd_status_at = timezone.now()
    rater.save(update_fields=["crowd_status", "crowd_status_at"])
    if rater.crowd_status in RELEASABLE_STATUSES:
        return f"status {rater.crowd_status} recorded; the participant's places can be released"
    return f"status {rater.crowd_status} recorded"


def raters_releasable(*, project: Project):
    """Raters whose Prolific status says they will not come back and whose places are still held."""
    return Rater.objects.filter(project=project, crowd_status__in=RELEASABLE_STATUSES, places_released_at__isnull=True)


def raters_places_release(*, project: Project, by_user, participant_ids: list[str] | None = None) -> dict:
    """Release the places of every releasable rater (by Prolific status), or of the given participant ids
    (for studies that do not use the webhook: ids pasted from Prolific's submissions list). Unknown ids and
    raters released before are reported, not refused. Returns ``{"raters", "places", "unknown", "already"}``."""
    if participant_ids is None:
        raters = list(raters_releasable(project=project).order_by("id"))
        unknown: list[str] = []
    else:
        ids = list(dict.fromkeys(p.strip() for p in participant_ids if p.strip()))
        if not ids:
            raise InvalidInput("Give at least one participant id.", field="participant_ids")
        if len(ids) > MAX_PARTICIPANT_IDS:
            raise InvalidInput(f"At most {MAX_PARTICIPANT_IDS:,} participant ids at a time.", field="participant_ids")
        raters = list(Rater.objects.filter(project=project, prolific_pid__in=ids).order_by("id"))
        unknown = sorted(set(ids) - {r.prolific_pid for r in raters})
    released = places = already = 0
    for rater in raters:
        if rater.places_released_at is not None:
            already += 1
            continue
        n = rater_places_release(rater=rater, by_user=by_user)
        rater.refresh_from_db(fields=["places_released_at"])
        released += 1
        places += n
    return {"raters": released, "places": places, "unknown": unknown, "already": already}


@dataclass(frozen=True)
class ProlificSummary:
    configured: bool
    n_releasable: int
    n_released: int
    statuses: list[tuple[str, int]]
    events: list[ProlificEvent]


def prolific_summary(*, project: Project, n_events: int = 20) -> ProlificSummary:
    """What the raters page shows researchers about Prolific: the webhook, statuses, places to release."""
    statuses = (Rater.objects.filter(project=project).exclude(crowd_status="").values_list("crowd_status")
                .annotate(n=Count("id")).order_by("crowd_status"))
    return ProlificSummary(
        configured=bool(project.prolific_webhook_secret),
        n_releasable=raters_releasable(project=project).count(),
        n_released=Rater.objects.filter(project=project, places_released_at__isnull=False).count(),
        statuses=list(statuses),
        events=list(ProlificEvent.objects.filter(project=project).select_related("rater")[:n_events]),
    )
