"""Prolific: the webhook it calls on submission status changes, and the researcher's actions on the raters page
(the webhook secret; releasing the places of participants who returned, timed out or were rejected).

The logic is in :mod:`annotator.services.prolific`; these views parse, call it and answer.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from annotator import services
from annotator.errors import DomainError
from annotator.models import Project
from annotator.permissions import project_member_or_404
from annotator.services import prolific
from annotator.throttles import WebhookThrottle


class ProlificWebhook(APIView):
    """Prolific's webhook (no login: every call must carry the signature made with the project's secret)."""

    authentication_classes: list = []  # no session, so no CSRF check: the HMAC signature authenticates
    permission_classes = [AllowAny]
    throttle_classes = [WebhookThrottle]

    @extend_schema(
        summary="Prolific webhook: a submission status change",
        description="Called by Prolific, signed with the project's webhook secret (set on the raters page): "
                    "`X-Prolific-Request-Signature` is base64(HMAC-SHA256(secret, timestamp + body)), "
                    "`X-Prolific-Request-Timestamp` UNIX seconds within 5 minutes of now. Each `X-Event-ID` "
                    "is applied once; a retry is answered 200 with `duplicate: true`. A "
                    "`submission.status.change` event records the participant's status on their rater.",
        parameters=[
            OpenApiParameter(prolific.SIGNATURE_HEADER, str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(prolific.TIMESTAMP_HEADER, str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter(prolific.EVENT_ID_HEADER, str, OpenApiParameter.HEADER, required=True),
        ],
        request=inline_serializer("ProlificEventBody", {
            "event_type": serializers.CharField(), "resource_id": serializers.CharField(required=False),
            "participant_id": serializers.CharField(required=False), "status": serializers.CharField(required=False),
        }),
        responses={200: inline_serializer("ProlificEventReceipt", {
            "event_id": serializers.CharField(), "duplicate": serializers.BooleanField(),
            "outcome": serializers.CharField(),
        })},
    )
    def post(self, request, slug):
        project = Project.objects.filter(slug=slug).first()  # None is refused like a wrong signature (no 404)
        body = request.body  # the exact bytes Prolific signed (read before any parsing)
        receipt = prolific.prolific_event_receive(
            project=project, body=body, signature=request.headers.get(prolific.SIGNATURE_HEADER, ""),
            timestamp=request.headers.get(prolific.TIMESTAMP_HEADER, ""),
            event_id=request.headers.get(prolific.EVENT_ID_HEADER, ""))
        return Response({"event_id": receipt.event.event_id, "duplicate": receipt.duplicate,
                         "outcome": receipt.event.outcome})


def _refused(request: HttpRequest, project: Project, exc: DomainError) -> HttpResponse:
    return render(request, "researcher/prolific_refused.html", {"project": project, "error": exc},
                  status=exc.status)


@login_required
@require_POST
def prolific_settings(request: HttpRequest, slug: str) -> HttpResponse:
    """Set or clear (``clear``) the project's Prolific webhook secret (researchers only)."""
    project, _ = project_member_or_404(request, slug, write=True)
    secret = "" if "clear" in request.POST else request.POST.get("prolific_webhook_secret", "").strip()
    if not secret and "clear" not in request.POST:
        return _refused(request, project, DomainError(
            "Paste the webhook secret Prolific shows for your workspace (or turn the webhook off).",
            field="prolific_webhook_secret"))
    try:
        services.project_update(project=project, prolific_webhook_secret=secret)
    except DomainError as exc:
        return _refused(request, project, exc)
    messages.success(request, "Prolific webhook secret saved: signed calls are accepted." if secret
                     else "Prolific webhook turned off: every call is refused until a secret is set.")
    return redirect(reverse("annotator:raters", args=[slug]) + "#prolific")


@login_required
@require_POST
def places_release(request: HttpRequest, slug: str) -> HttpResponse:
    """Release the places of participants who left: all those Prolific reported (``by_status``) or the
    participant ids pasted (one per line, or separated by commas or spaces)."""
    project, _ = project_member_or_404(request, slug, write=True)
    ids = None if "by_status" in request.POST else request.POST.get("participant_ids", "").replace(",", " ").split()
    try:
        result = prolific.raters_places_release(project=project, by_user=request.user, participant_ids=ids)
    except DomainError as exc:
        return _refused(request, project, exc)
    text = (f"Released the places of {result['raters']} participant{'s' if result['raters'] != 1 else ''} "
            f"({result['places']} place{'s' if result['places'] != 1 else ''} given back to other raters); "
            "they are excluded from fits and statistics.")
    if result["already"]:
        text += f" {result['already']} had been released before."
    if result["unknown"]:
        shown = ", ".join(result["unknown"][:20]) + (" …" if len(result["unknown"]) > 20 else "")
        text += f" No rater of this project has the id{'s' if len(result['unknown']) > 1 else ''}: {shown}."
    messages.success(request, text)
    return redirect(reverse("annotator:raters", args=[slug]) + "#prolific")
