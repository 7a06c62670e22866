"""Writes for metric gates: pass/fail rules on a metric, and every change to them.

A gate's threshold changes only here, and every change leaves a :class:`GateChange` row with who,
when, why and (for a round's proposal) which round: the gate's history, never edited silently.
A round's result proposes thresholds (:class:`GateProposal`); a staff member applies or rejects each.
"""

from __future__ import annotations

import math

from django.db import transaction
from django.utils import timezone

from annotator.errors import Conflict, InvalidInput
from annotator.models import Project
from ranking.models import (
    FLOAT_MAX,
    GateChange,
    GateDirection,
    GateProposal,
    Metric,
    MetricDirection,
    MetricGate,
    MetricKind,
    ProposalStatus,
)

MAX_REASON_CHARS = 2000


def _reason(reason: str, *, required: bool = True) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise InvalidInput("Say why (a short reason is kept in the gate's history).", field="reason")
    if len(text) > MAX_REASON_CHARS:
        raise InvalidInput(f"The reason is longer than {MAX_REASON_CHARS} characters.", field="reason")
    return text


def _threshold(value) -> float:
    try:
        threshold = float(value)
    except (TypeError, ValueError):
        raise InvalidInput("threshold must be a number.", field="threshold") from None
    if not math.isfinite(threshold) or abs(threshold) > FLOAT_MAX:
        raise InvalidInput("threshold must be a finite number.", field="threshold")
    return threshold


def gate_create(*, project: Project, metric: Metric, threshold, user, dimension: str = "overall",
                direction: str | None = None, reason: str = "") -> MetricGate:
    """A new gate on one of the project's item metrics. ``direction`` defaults to the metric's own
    (higher is better → passes at or above the threshold)."""
    if metric.project_id not in (None, project.pk):
        raise InvalidInput("That metric belongs to another project.", field="metric")
    if metric.kind != MetricKind.ITEM:
        raise InvalidInput("Gates are on per-image metrics; this metric scores pairs or sets.", field="metric")
    if direction is None:
        if metric.direction == MetricDirection.NONE:
            raise InvalidInput("This metric has no direction: say whether images pass above or below the "
                               "threshold.", field="direction")
        direction = GateDirection.LOWER if metric.direction == MetricDirection.LOWER else GateDirection.HIGHER
    if direction not in GateDirection.values:
        raise InvalidInput(f"direction must be one of {', '.join(GateDirection.values)}.", field="direction")
    dimension = (dimension or "").strip() or "overall"
    if len(dimension) > 40:
        raise InvalidInput("dimension is at most 40 characters.", field="dimension")
    value = _threshold(threshold)
    with transaction.atomic():
        if MetricGate.objects.filter(project=project, metric=metric, dimension=dimension).exists():
            raise Conflict(f"This project already has a gate on {metric.name} for {dimension!r}; change its "
                           "threshold instead.", code="gate_exists")
        gate = MetricGate.objects.create(project=project, metric=metric, dimension=dimension, direction=direction,
                                         threshold=value, created_by=user)
        GateChange.objects.create(gate=gate, action=GateChange.Action.CREATED, new_threshold=value, changed_by=user,
                                  reason=_reason(reason, required=False) or "Gate created.")
    return gate


def gate_set_threshold(*, gate: MetricGate, threshold, user, reason: str) -> MetricGate:
    """Change a gate's threshold by hand (the reason is required and kept)."""
    value = _threshold(threshold)
    why = _reason(reason)
    with transaction.atomic():
        gate = MetricGate.objects.select_for_update().get(pk=gate.pk)
        if value == gate.threshold:
            raise InvalidInput(f"The threshold is already {value:g}.", field="threshold")
        GateChange.objects.create(gate=gate, action=GateChange.Action.THRESHOLD, old_threshold=gate.threshold,
                                  new_threshold=value, changed_by=user, reason=why)
        gate.threshold = value
        gate.save(update_fields=["threshold"])
        GateProposal.objects.filter(gate=gate, status=ProposalStatus.PENDING).update(
            status=ProposalStatus.SUPERSEDED)
    return gate


def gate_set_active(*, gate: MetricGate, is_active: bool, user, reason: str) -> MetricGate:
    why = _reason(reason)
    with transaction.atomic():
        gate = MetricGate.objects.select_for_update().get(pk=gate.pk)
        if gate.is_active == is_active:
            return gate
        gate.is_active = is_active
        gate.save(update_fields=["is_active"])
        GateChange.objects.create(
            gate=gate, action=GateChange.Action.ACTIVATED if is_active else GateChange.Action.DEACTIVATED,
            old_threshold=gate.threshold, new_threshold=gate.threshold, changed_by=user, reason=why)
    return gate


def _pending(proposal: GateProposal) -> GateProposal:
    locked = GateProposal.objects.select_for_update().select_related("gate").get(pk=proposal.pk)
    if locked.status != ProposalStatus.PENDING:
        raise Conflict(f"This proposal was already {locked.get_status_display().lower()}.",
                       code="proposal_decided")
    return locked


def proposal_apply(*, proposal: GateProposal, user, reason: str = "") -> MetricGate:
    """Apply a round's proposed threshold to its gate (recorded with the round, who, when and why)."""
    with transaction.atomic():
        proposal = _pending(proposal)
        gate = MetricGate.objects.select_for_update().get(pk=proposal.gate_id)
        why = _reason(reason, required=False) or (
            f"Applied the threshold proposed by round {proposal.round.number} "
            f"(95% CI {proposal.ci_low:.4g} to {proposal.ci_high:.4g}).")
        GateChange.objects.create(gate=gate, action=GateChange.Action.THRESHOLD, old_threshold=gate.threshold,
                                  new_threshold=proposal.threshold, proposal=proposal, round_id=proposal.round_id,
                                  changed_by=user, reason=why)
        gate.threshold = proposal.threshold
        gate.save(update_fields=["threshold"])
        proposal.status = ProposalStatus.APPLIED
        proposal.decided_by, proposal.decided_at, proposal.reason = user, timezone.now(), why
        proposal.save(update_fields=["status", "decided_by", "decided_at", "reason"])
        GateProposal.objects.filter(gate=gate, status=ProposalStatus.PENDING).update(
            status=ProposalStatus.SUPERSEDED)
    return gate


def proposal_reject(*, proposal: GateProposal, user, reason: str) -> GateProposal:
    """Keep the gate as it is; the rejection and its reason go into the gate's history."""
    why = _reason(reason)
    with transaction.atomic():
        proposal = _pending(proposal)
        proposal.status = ProposalStatus.REJECTED
        proposal.decided_by, proposal.decided_at, proposal.reason = user, timezone.now(), why
        proposal.save(update_fields=["status", "decided_by", "decided_at", "reason"])
        GateChange.objects.create(gate=proposal.gate, action=GateChange.Action.REJECTED,
                                  old_threshold=proposal.gate.threshold, new_threshold=proposal.gate.threshold,
                                  proposal=proposal, round_id=proposal.round_id, changed_by=user, reason=why)
    return proposal
