"""Writes for calibration rounds: people rank a sample of the archive; the metrics and gates are checked.

Lifecycle: :func:`round_create` drafts a round (sample size, how the sample is drawn, who ranks);
:func:`round_start` draws the sample and freezes the round — its images become the one rank task of a
task pool (``annotator.TaskPool``), so its rankings stay out of the study's own fits and statistics;
each stored ranking asks for a :class:`RoundResult` (a job, coalesced), computed by
:func:`round_result_compute`: the human consensus (Plackett–Luce strengths with CIs), every metric's
agreement with it (Kendall τ_b with its exact p-value, pairwise accuracy with a CI, top-k overlap),
each active gate's decisions that the humans contradict, and a proposed threshold per gate
(:class:`GateProposal`, applied or rejected by staff in :mod:`ranking.services.gates`).
:func:`round_close` ends a round. :func:`rounds_schedule_due` (beat) makes the rounds a project has
scheduled.
"""

from __future__ import annotations

import secrets
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from annotator import services as annotator_services
from annotator.errors import Conflict, InvalidInput
from annotator.models import RANK_MAX_ITEMS, RANK_MIN_ITEMS, Item, Project
from ranking import jobs, loaders
from ranking.core import rounds as core
from ranking.models import (
    CalibrationRound,
    GateDirection,
    GateProposal,
    MetricGate,
    ProposalStatus,
    RoundRaters,
    RoundResult,
    RoundSampling,
    RoundSchedule,
    RoundStatus,
)

KIND = jobs.job_kind_register(name="round_result", model=RoundResult, task_name="ranking.round_result_execute")
MAX_CROWD_RATERS = 100
#: Raters a staff round may have (any staff member may rank it).
STAFF_ROUND_MAX_RATERS = 1000


def _check_int(value, low: int, high: int, field: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidInput(f"{what} must be a whole number from {low} to {high}.", field=field)
    return value


def round_create(*, project: Project, user, sample_size: int = 10, sampling: str = RoundSampling.UNIFORM,
                 raters: str = RoundRaters.STAFF, panel=(), n_raters: int = 3, gate: MetricGate | None = None,
                 note: str = "", seed: int | None = None, schedule: RoundSchedule | None = None) -> CalibrationRound:
    """Draft a round. Nothing is sampled yet: that happens when it starts."""
    _check_int(sample_size, RANK_MIN_ITEMS, RANK_MAX_ITEMS, "sample_size", "The sample size")
    if sampling not in RoundSampling.values:
        raise InvalidInput(f"sampling must be one of {', '.join(RoundSampling.values)}.", field="sampling")
    if raters not in RoundRaters.values:
        raise InvalidInput(f"raters must be one of {', '.join(RoundRaters.values)}.", field="raters")
    if sampling == RoundSampling.NEAR_THRESHOLD:
        if gate is None:
            raise InvalidInput("Sampling near a threshold needs the gate whose threshold.", field="gate")
        if gate.project_id != project.pk:
            raise InvalidInput("That gate belongs to another project.", field="gate")
    elif gate is not None:
        gate = None  # only near-threshold sampling uses a gate
    panel = list(panel)
    if raters == RoundRaters.PANEL:
        if not panel:
            raise InvalidInput("A panel round needs at least one panel member.", field="panel")
        not_staff = [u.get_username() for u in panel if not u.is_staff]
        if not_staff:
            raise InvalidInput(f"Panel members must be staff; {not_staff[0]} is not.", field="panel")
    if raters == RoundRaters.CROWD:
        _check_int(n_raters, 1, MAX_CROWD_RATERS, "n_raters", "The number of crowd raters")
    if len(note) > 2000:
        raise InvalidInput("The note is at most 2,000 characters.", field="note")
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()  # numbers are handed out in turn
        number = (CalibrationRound.objects.filter(project=project).aggregate(m=Max("number"))["m"] or 0) + 1
        round_ = CalibrationRound.objects.create(
            project=project, number=number, sample_size=sample_size, sampling=sampling, gate=gate, raters=raters,
            n_raters=n_raters if raters == RoundRaters.CROWD else len(panel) if raters == RoundRaters.PANEL else 0,
            seed=seed if seed is not None else secrets.randbelow(2**31), note=note, created_by=user,
            schedule=schedule)
        if panel:
            round_.panel.set(panel)
    return round_


def round_delete_draft(*, round_: CalibrationRound) -> None:
    with transaction.atomic():
        locked = CalibrationRound.objects.select_for_update().get(pk=round_.pk)
        if locked.status != RoundStatus.DRAFT:
            raise Conflict("A round that has started is kept: close it instead.", code="round_frozen")
        locked.delete()


def round_sample(*, round_: CalibrationRound) -> list[int]:
    """The image ids the round's sampling draws now (reproducible from the round's seed and the data)."""
    project = round_.project
    k = round_.sample_size
    items = list(Item.objects.filter(project=project, retired_at__isnull=True).order_by("id")
                 .values_list("id", "source_model"))
    if len(items) < k:
        raise InvalidInput(f"The project has {len(items)} current images; a round of {k} needs at least {k}.",
                           field="sample_size")
    ids = np.array([i for i, _ in items], dtype=np.int64)
    rng = np.random.default_rng(round_.seed)
    if round_.sampling == RoundSampling.UNIFORM:
        picked = core.sample_uniform(ids.size, k, random_state=rng)
    elif round_.sampling == RoundSampling.STRATIFIED:
        picked = core.sample_stratified(np.array([s or "(none)" for _, s in items], dtype=object), k,
                                        random_state=rng)
    elif round_.sampling == RoundSampling.DISAGREEMENT:
        matrix = loaders.item_metric_matrix(project=project, item_ids=ids)
        if len(matrix.metrics) < 2:
            raise InvalidInput("Sampling where metrics disagree needs scores of at least two metrics (with a "
                               "direction) for the project's images.", field="sampling")
        picked = core.sample_disagreement(matrix.oriented(), k, random_state=rng)
    else:
        gate = round_.gate
        values = loaders.metric_values(project=project, metric=gate.metric)
        by_item = dict(zip(values.item_ids.tolist(), values.values.tolist()))
        scores = np.array([by_item.get(int(i), np.nan) for i in ids])
        if int(np.isfinite(scores).sum()) < k:
            raise InvalidInput(f"Only {int(np.isfinite(scores).sum())} current images have a {gate.metric.name} "
                               f"score; sampling near its threshold needs {k}.", field="sampling")
        picked = core.sample_near_threshold(scores, gate.threshold, k, random_state=rng)
    return [int(ids[i]) for i in picked]


def round_start(*, round_: CalibrationRound) -> CalibrationRound:
    """Draw the sample and freeze the round: its rank task is made, raters may start."""
    with transaction.atomic():
        round_ = CalibrationRound.objects.select_for_update(of=("self",)).select_related(
            "project", "gate__metric").get(pk=round_.pk)
        if round_.status != RoundStatus.DRAFT:
            raise Conflict("This round has started already; a started round is frozen.", code="round_frozen")
        item_ids = round_sample(round_=round_)
        max_raters = {RoundRaters.STAFF: STAFF_ROUND_MAX_RATERS, RoundRaters.PANEL: max(1, round_.panel.count()),
                      RoundRaters.CROWD: round_.n_raters}[round_.raters]
        pool = annotator_services.pool_create_rank(
            project=round_.project, label=f"Calibration round {round_.number}", item_ids=item_ids,
            max_raters=max_raters)
        if round_.raters != RoundRaters.CROWD:
            annotator_services.pool_set_open(pool=pool, is_open=False)  # no link: staff rank in the app
        round_.item_ids, round_.pool, round_.status = item_ids, pool, RoundStatus.STARTED
        round_.started_at = timezone.now()
        round_.save(update_fields=["item_ids", "pool", "status", "started_at"])
    return round_


def round_close(*, round_: CalibrationRound) -> CalibrationRound:
    """No more rankings: the link closes, and a last result is computed from every ranking stored."""
    with transaction.atomic():
        round_ = CalibrationRound.objects.select_for_update().get(pk=round_.pk)
        if round_.status != RoundStatus.STARTED:
            raise Conflict("Only a started round can be closed.", code="round_not_started")
        round_.status, round_.closed_at = RoundStatus.CLOSED, timezone.now()
        round_.save(update_fields=["status", "closed_at"])
        annotator_services.pool_set_open(pool=round_.pool, is_open=False)
        annotator_services.pool_set_max_raters(pool=round_.pool, max_raters=1)  # nobody new is handed the task
        if loaders.round_latest_answer_id(pool_id=round_.pool_id) is not None:
            round_result_request(round_=round_)
    return round_


def round_may_rank(*, round_: CalibrationRound, user) -> tuple[bool, str]:
    """Whether ``user`` may rank the round in the app, and if not why (for the page)."""
    if round_.status != RoundStatus.STARTED:
        return False, "The round is not open for ranking (it is a draft or closed)."
    if not user.is_staff:
        return False, "Only staff rank calibration rounds in the app."
    if round_.raters == RoundRaters.CROWD:
        return False, "Crowd raters rank this round, by its link."
    if round_.raters == RoundRaters.PANEL and not round_.panel.filter(pk=user.pk).exists():
        return False, "You are not on this round's panel."
    return True, ""


def round_rater(*, round_: CalibrationRound, user):
    """The rater ``user`` ranks the round as (made on first use); Forbidden-style refusal is the view's."""
    allowed, why = round_may_rank(round_=round_, user=user)
    if not allowed:
        raise Conflict(why, code="round_not_rankable")
    return annotator_services.rater_staff_for_pool(pool=round_.pool, user=user)


# ------------------------------------------------------------------------------------------------
# Results (a job)
# ------------------------------------------------------------------------------------------------


def round_result_request(*, round_: CalibrationRound, automatic: bool = True) -> RoundResult:
    """Ask for a fresh result; coalesces onto the round's queued one. Published after commit."""
    return jobs.job_queued_or_new(model=RoundResult, scope={"round": round_})


def pool_answer_stored(*, pool_id: int) -> None:
    """A ranking of a task pool was stored (in its transaction): if the pool is a round's, queue a result."""
    round_ = CalibrationRound.objects.filter(pool_id=pool_id).first()
    if round_ is not None:
        round_result_request(round_=round_)


def _finite_or_none(value: float) -> float | None:
    """τ and its p-value are undefined for a metric that scores every image alike: stored as null."""
    return float(value) if np.isfinite(value) else None


def _alarm_sims() -> int:
    return int(getattr(settings, "PREFLAB_ROUND_ALARM_SIMS", 200))


def round_result_compute(*, round_: CalibrationRound, cutoff_answer_id: int | None, progress=None) -> dict:
    """The round's result from its rankings up to the cut-off (JSON-ready); the gates' proposals are
    returned under ``"proposals"`` and stored by the job."""
    step = progress or (lambda fraction: None)
    item_ids = [int(i) for i in round_.item_ids]
    n = len(item_ids)
    rankings = loaders.round_rankings(pool_id=round_.pool_id, item_ids=item_ids, cutoff_answer_id=cutoff_answer_id)
    if not rankings:
        raise InvalidInput("Nobody has ranked this round yet.", field="round")
    consensus = core.round_consensus(rankings, n)
    names = dict(Item.objects.filter(pk__in=item_ids).values_list("pk", "original_name"))
    place = {int(i): p for p, i in enumerate(consensus.order, start=1)}
    items = [{"id": item_ids[i], "name": names.get(item_ids[i], ""), "place": place[i],
              "strength": float(consensus.strengths[i]), "ci_low": float(consensus.ci_low[i]),
              "ci_high": float(consensus.ci_high[i])} for i in consensus.order]
    step(0.2)
    matrix = loaders.item_metric_matrix(project=round_.project, item_ids=item_ids)
    metrics, skipped = [], []
    for m, metric in enumerate(matrix.metrics):
        scores = matrix.values[:, m]
        if int(np.isfinite(scores).sum()) < RANK_MIN_ITEMS:
            skipped.append({"name": metric.name, "why": f"scores for {int(np.isfinite(scores).sum())} of the "
                                                          f"{n} images"})
            continue
        agreement = core.metric_round_agreement(
            rankings, n, scores, higher_is_better=metric.direction != "lower", random_state=round_.seed + m)
        metrics.append({"metric_id": metric.pk, "name": metric.name, "version": metric.version,
                        "direction": metric.direction, "tau_b": _finite_or_none(agreement.tau_b),
                        "p_value": _finite_or_none(agreement.p_value),
                        "p_method": agreement.p_method, "accuracy": agreement.accuracy,
                        "accuracy_ci_low": agreement.accuracy_ci_low, "accuracy_ci_high": agreement.accuracy_ci_high,
                        "top_k": agreement.top_k, "top_k_overlap": agreement.top_k_overlap,
                        "n_items": agreement.n_items})
    step(0.5)
    good = core.human_good(consensus.strengths)
    column = {metric.pk: m for m, metric in enumerate(matrix.metrics)}
    gates, proposals = [], []
    for gate in MetricGate.objects.filter(project=round_.project, is_active=True).select_related("metric"):
        if gate.metric_id not in column:
            gates.append({"gate_id": gate.pk, "label": str(gate), "skipped": "no scores for the round's images"})
            continue
        scores = matrix.values[:, column[gate.metric_id]]
        if int(np.isfinite(scores).sum()) < RANK_MIN_ITEMS:
            gates.append({"gate_id": gate.pk, "label": str(gate), "skipped": "too few scored images in the round"})
            continue
        higher = gate.direction == GateDirection.HIGHER
        check = core.gate_check(scores, gate.threshold, higher_is_better=higher, human_good=good)
        proposal = core.propose_threshold(rankings, n, scores, gate.threshold, higher_is_better=higher,
                                          random_state=round_.seed + 1000 + gate.pk)
        gates.append({
            "gate_id": gate.pk, "label": str(gate), "metric": gate.metric.name, "threshold": gate.threshold,
            "direction": gate.direction, "agreement": check.agreement,
            "false_pass": [item_ids[i] for i in check.false_pass],
            "false_fail": [item_ids[i] for i in check.false_fail],
            "passed": {str(item_ids[i]): bool(check.passed[i]) for i in range(n) if np.isfinite(scores[i])},
            "proposal": {"threshold": proposal.threshold, "ci_low": proposal.ci_low, "ci_high": proposal.ci_high,
                         "agreement_current": proposal.agreement_current,
                         "agreement_proposed": proposal.agreement_proposed, "changed": proposal.changed},
        })
        if proposal.changed:
            proposals.append((gate, proposal))
    step(0.7)
    n_raters = len(rankings)
    alarm = core.alarm_characteristics(n_items=n, n_raters=max(1, n_raters), drop=0.05, n_sims=_alarm_sims(),
                                       n_baseline=settings.PREFLAB_ROUND_ALARM_BASELINE,
                                       h=settings.PREFLAB_ROUND_ALARM_H, random_state=round_.seed)
    return {
        "n_rankings": n_raters, "n_items": n, "items": items, "metrics": metrics, "skipped_metrics": skipped,
        "gates": gates, "human_good": [item_ids[i] for i in np.flatnonzero(good)],
        "alarm": {"false_alarm_rate": alarm.false_alarm_rate, "detection_delay_mean": alarm.detection_delay_mean,
                  "detection_delay_median": alarm.detection_delay_median, "detection_rate": alarm.detection_rate,
                  "n_sims": alarm.n_sims, "n_items": alarm.n_items, "n_raters": alarm.n_raters,
                  "drop": alarm.drop, "round_sd": alarm.round_sd, "n_baseline": settings.PREFLAB_ROUND_ALARM_BASELINE,
                  "h": settings.PREFLAB_ROUND_ALARM_H},
        "proposals": [(gate.pk, p.current_threshold, p.threshold, p.ci_low, p.ci_high, p.agreement_current,
                       p.agreement_proposed) for gate, p in proposals],
    }


def _prepare(result: RoundResult) -> bool:
    round_ = CalibrationRound.objects.get(pk=result.round_id)
    result.cutoff_answer_id = loaders.round_latest_answer_id(pool_id=round_.pool_id)
    return True


def _compute(result: RoundResult, lease: jobs.Lease) -> jobs.Outcome:
    round_ = CalibrationRound.objects.select_related("project").get(pk=result.round_id)
    content = round_result_compute(round_=round_, cutoff_answer_id=result.cutoff_answer_id, progress=lease.progress)
    proposals = content.pop("proposals")

    def store(job: RoundResult) -> None:
        # A new result's proposals replace the round's pending ones (older data); decided ones stay.
        GateProposal.objects.filter(round_id=job.round_id, status=ProposalStatus.PENDING).update(
            status=ProposalStatus.SUPERSEDED)
        GateProposal.objects.bulk_create([
            GateProposal(gate_id=gate_id, round_id=job.round_id, result_id=job.pk, current_threshold=current,
                         threshold=threshold, ci_low=low, ci_high=high, agreement_current=a_now,
                         agreement_proposed=a_new)
            for gate_id, current, threshold, low, high, a_now, a_new in proposals
        ])

    return jobs.Outcome(store=store, fields={"result": content})


def round_result_execute(*, result_id: int) -> None:
    """Compute and store one round result (the Celery task's body). Idempotent."""
    jobs.job_run(kind=KIND.name, job_id=result_id, body=_compute, prepare=_prepare)


def round_result_compute_now(*, round_: CalibrationRound) -> RoundResult:
    """Compute the round's result in this process, through the same lifecycle (rounds are small)."""
    result = jobs.job_queued_or_new(model=RoundResult, scope={"round": round_}, publish=False)
    round_result_execute(result_id=result.pk)
    result.refresh_from_db()
    return result


# ------------------------------------------------------------------------------------------------
# Schedules
# ------------------------------------------------------------------------------------------------


def round_schedule_set(*, project: Project, user, every_n_images: int | None, every_days: int | None,
                       sample_size: int = 10, sampling: str = RoundSampling.UNIFORM,
                       raters: str = RoundRaters.STAFF, n_raters: int = 3, is_active: bool = True) -> RoundSchedule:
    """Create or change the project's round schedule (a round every N new images or every D days)."""
    if every_n_images is not None:
        _check_int(every_n_images, 1, 10_000_000, "every_n_images", "every_n_images")
    if every_days is not None:
        _check_int(every_days, 1, 3650, "every_days", "every_days")
    if is_active and every_n_images is None and every_days is None:
        raise InvalidInput("Give every_n_images or every_days (or both) for an active schedule.",
                           field="every_n_images")
    _check_int(sample_size, RANK_MIN_ITEMS, RANK_MAX_ITEMS, "sample_size", "The sample size")
    if sampling not in (RoundSampling.UNIFORM, RoundSampling.STRATIFIED, RoundSampling.DISAGREEMENT):
        raise InvalidInput("A schedule samples uniformly, stratified or where metrics disagree.", field="sampling")
    if raters not in (RoundRaters.STAFF, RoundRaters.CROWD):
        raise InvalidInput("Scheduled rounds are ranked by staff or by crowd raters.", field="raters")
    if raters == RoundRaters.CROWD:
        _check_int(n_raters, 1, MAX_CROWD_RATERS, "n_raters", "The number of crowd raters")
    with transaction.atomic():
        schedule, _ = RoundSchedule.objects.select_for_update().get_or_create(
            project=project, defaults={"created_by": user, "last_round_at": timezone.now(),
                                       "last_item_count": project.items.filter(retired_at__isnull=True).count()})
        for name, value in (("every_n_images", every_n_images), ("every_days", every_days),
                            ("sample_size", sample_size), ("sampling", sampling), ("raters", raters),
                            ("n_raters", n_raters), ("is_active", is_active)):
            setattr(schedule, name, value)
        schedule.save()
    return schedule


def rounds_schedule_due(*, now=None) -> list[CalibrationRound]:
    """Make (and start) the rounds that active schedules are due for. Idempotent per due moment: the
    schedule's last-round marks move in the same transaction."""
    now = now or timezone.now()
    made = []
    for schedule_id in RoundSchedule.objects.filter(is_active=True).values_list("pk", flat=True):
        with transaction.atomic():
            schedule = RoundSchedule.objects.select_for_update(skip_locked=True).select_related(
                "project", "created_by").filter(pk=schedule_id, is_active=True).first()
            if schedule is None:
                continue
            n_items = schedule.project.items.filter(retired_at__isnull=True).count()
            by_images = (schedule.every_n_images is not None
                         and n_items - schedule.last_item_count >= schedule.every_n_images)
            by_days = (schedule.every_days is not None and (
                schedule.last_round_at is None or now - schedule.last_round_at >= timedelta(days=schedule.every_days)))
            if not (by_images or by_days) or n_items < schedule.sample_size:
                continue
            round_ = round_create(project=schedule.project, user=schedule.created_by,
                                  sample_size=schedule.sample_size, sampling=schedule.sampling,
                                  raters=schedule.raters, n_raters=schedule.n_raters, schedule=schedule,
                                  note="Made by the project's round schedule.")
            try:
                with transaction.atomic():
                    round_ = round_start(round_=round_)
            except InvalidInput as exc:  # e.g. too few metrics to sample where they disagree: kept as a draft
                round_.note += f" Could not start: {exc.message}"
                round_.save(update_fields=["note"])
            schedule.last_round_at, schedule.last_item_count = now, n_items
            schedule.save(update_fields=["last_round_at", "last_item_count"])
            made.append(round_)
    return made
