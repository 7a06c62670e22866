"""Reads for the ranking app: leaderboards, fit history, personal rankings, agreement reports,
the datasheet's own reads (demographics, instruction and consent histories) and automated metrics."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from annotator.errors import InvalidInput, NotFound
from annotator.models import (
    DEMOGRAPHIC_FIELDS,
    Annotation,
    ConsentVersion,
    Demographics,
    InstructionVersion,
    Judgment,
    Project,
    RankAnswer,
    Rater,
    demographic_field_label,
)
from ranking.core.pairwise import PREFER_NOT
from ranking.loaders import demographic_labels
from ranking.metric_plugins import Availability, list_plugins
from ranking.models import (
    ACTIVE_STATUSES,
    AgreementReport,
    CalibrationReport,
    CalibrationRound,
    DatasheetNote,
    FitModel,
    FitRun,
    FitStatus,
    GateChange,
    GateProposal,
    ItemScore,
    JobStatus,
    Metric,
    MetricGate,
    MetricRun,
    MetricScore,
    MetricSetScore,
    RaterItemOffset,
    RoundResult,
)

ELO_BASE = 1500.0
Z95 = 1.959964
ELO_PER_LOGIT = 400 / math.log(10)


def elo(strength: float) -> float:
    """Strength θ (natural log-odds) on an Elo-like scale: 1500 + 400·θ / ln 10."""
    return ELO_BASE + ELO_PER_LOGIT * strength


def fit_latest(*, project: Project, model: str = FitModel.BT) -> FitRun | None:
    return FitRun.objects.filter(project=project, model=model, status=FitStatus.SUCCEEDED).order_by("-id").first()


def fit_runs(*, project: Project, limit: int = 50) -> QuerySet[FitRun]:
    return FitRun.objects.filter(project=project).order_by("-id")[:limit]


@dataclass(frozen=True)
class LeaderboardRow:
    rank: int
    item_id: int
    name: str
    prompt: str
    source_model: str
    strength: float
    elo: float
    se: float | None
    ci_low: float | None
    ci_high: float | None
    wins: float
    losses: float
    ties: float
    n_judgments: int


def leaderboard(*, fit: FitRun) -> list[LeaderboardRow]:
    scores = ItemScore.objects.filter(fit=fit).select_related("item").order_by("rank")
    return [
        LeaderboardRow(rank=s.rank, item_id=s.item_id, name=s.item.original_name, prompt=s.item.prompt,
                       source_model=s.item.source_model, strength=s.strength, elo=elo(s.strength), se=s.se,
                       ci_low=s.ci_low, ci_high=s.ci_high, wins=s.wins, losses=s.losses, ties=s.ties,
                       n_judgments=s.n_judgments)
        for s in scores
    ]


def personal_ranking(*, fit: FitRun, rater: Rater) -> list[dict]:
    """A rater's personal strengths (θ + u_r) next to the population's, for the items they judged."""
    offsets = dict(RaterItemOffset.objects.filter(fit=fit, rater=rater).values_list("item_id", "offset"))
    scores = ItemScore.objects.filter(fit=fit, item_id__in=offsets).select_related("item")
    rows = [{"item_id": s.item_id, "name": s.item.original_name, "population": s.strength,
             "population_rank": s.rank, "personal": s.strength + offsets[s.item_id], "offset": offsets[s.item_id]}
            for s in scores]
    rows.sort(key=lambda r: -r["personal"])
    for i, row in enumerate(rows, start=1):
        row["personal_rank"] = i
    return rows


def hbt_raters(*, fit: FitRun) -> QuerySet[Rater]:
    return Rater.objects.filter(pk__in=RaterItemOffset.objects.filter(fit=fit).values("rater_id")).order_by(
        "-n_judgments")


def fit_pending(*, project: Project) -> FitRun | None:
    """The newest queued or running fit of the project (what the leaderboard's progress bar follows)."""
    return FitRun.objects.filter(project=project, status__in=ACTIVE_STATUSES).order_by("-id").first()


# ------------------------------------------------------------------------------------------------
# Agreement reports
# ------------------------------------------------------------------------------------------------


def agreement_report_latest(*, project: Project) -> AgreementReport | None:
    """The newest succeeded report of the project."""
    return AgreementReport.objects.filter(project=project, status=JobStatus.SUCCEEDED).order_by("-id").first()


def agreement_report_pending(*, project: Project) -> AgreementReport | None:
    """The newest queued or running report, if any (what the progress bar follows)."""
    return AgreementReport.objects.filter(project=project, status__in=ACTIVE_STATUSES).order_by("-id").first()


def agreement_report_failed_since(*, project: Project, report: AgreementReport | None) -> AgreementReport | None:
    """The newest failed report newer than ``report`` (so the page can say the last recompute failed)."""
    failed = AgreementReport.objects.filter(project=project, status=JobStatus.FAILED)
    if report is not None:
        failed = failed.filter(pk__gt=report.pk)
    return failed.order_by("-id").first()


def agreement_report_new_data(*, report: AgreementReport) -> dict:
    """How many judgments (quality checks' answers aside) and annotations arrived after the report's cut-offs."""
    judgments = Judgment.objects.filter(project_id=report.project_id, is_check=False)
    if report.cutoff_judgment_id is not None:
        judgments = judgments.filter(id__gt=report.cutoff_judgment_id)
    annotations = Annotation.objects.filter(project_id=report.project_id)
    if report.cutoff_annotation_id is not None:
        annotations = annotations.filter(id__gt=report.cutoff_annotation_id)
    return {"judgments": judgments.count(), "annotations": annotations.count()}


def agreement_report_state(*, project: Project) -> dict:
    """What the agreement and datasheet pages show about stored reports: the latest succeeded one, the
    pending one, a failure newer than the latest, and how much data arrived since."""
    latest = agreement_report_latest(project=project)
    return {
        "stored": latest,
        "pending": agreement_report_pending(project=project),
        "failed": agreement_report_failed_since(project=project, report=latest),
        "new_data": agreement_report_new_data(report=latest) if latest else None,
    }


def project_data_size(*, project: Project) -> int:
    """Judgments + annotations of the project (how long a report takes, roughly)."""
    return (Judgment.objects.filter(project=project, is_check=False).count()
            + Annotation.objects.filter(project=project).count())


# ------------------------------------------------------------------------------------------------
# The datasheet's reads
# ------------------------------------------------------------------------------------------------


def demographics_summary(*, project: Project) -> list[dict]:
    """Per field: counts of every answer, with 'prefer not to say' and 'not answered' (no identities)."""
    n_raters = Rater.objects.filter(project=project).count()
    out = []
    for field in DEMOGRAPHIC_FIELDS:
        labels = demographic_labels(field=field)
        counts = Counter((v or "").strip() for v in
                         Demographics.objects.filter(rater__project=project).values_list(field, flat=True))
        answered = sum(counts.values())
        counts[""] += n_raters - answered  # raters who never reached the demographics form
        rows = [{"value": v, "label": labels.get(v, v), "n": n} for v, n in counts.items() if n]
        rows.sort(key=lambda r: (r["value"] in ("", PREFER_NOT), -r["n"], r["label"]))
        out.append({"field": field, "label": demographic_field_label(field), "counts": rows})
    return out


def instruction_history(*, project: Project, cutoff_judgment_id: int | None = None,
                        cutoff_annotation_id: int | None = None) -> list[dict]:
    """Every instruction version with the dates it was in force and the answers given under it."""
    judged = Q(judgments__is_check=False)  # answers to quality checks are not data
    if cutoff_judgment_id is not None:
        judged &= Q(judgments__id__lte=cutoff_judgment_id)
    versions = list(InstructionVersion.objects.filter(project=project).order_by("version")
                    .annotate(n_judgments=Count("judgments", filter=judged, distinct=True)))
    annotations = Annotation.objects.filter(project=project)
    if cutoff_annotation_id is not None:
        annotations = annotations.filter(id__lte=cutoff_annotation_id)
    n_ann = dict(annotations.values_list("instruction_version_id")
                 .annotate(n=Count("id")).values_list("instruction_version_id", "n"))
    out = []
    for i, v in enumerate(versions):
        until = versions[i + 1].created_at if i + 1 < len(versions) else None
        out.append({"version": v.version, "text": v.text, "created_at": v.created_at, "in_force_from": v.created_at,
                    "in_force_until": until, "first_shown_at": v.first_shown_at, "n_judgments": v.n_judgments,
                    "n_annotations": int(n_ann.get(v.pk, 0))})
    return out


def consent_history(*, project: Project) -> list[dict]:
    versions = (ConsentVersion.objects.filter(project=project).order_by("version")
                .annotate(n_raters=Count("rater", distinct=True)))
    return [{"version": v.version, "text": v.text, "created_at": v.created_at, "n_raters_consented": v.n_raters}
            for v in versions]


def datasheet_limitations(*, project: Project) -> str:
    note = DatasheetNote.objects.filter(project=project).first()
    return note.limitations if note else ""


# ------------------------------------------------------------------------------------------------
# Automated metrics
# ------------------------------------------------------------------------------------------------


def metric_plugins() -> list[Availability]:
    """Every registered metric plugin and whether it can run here (absent weights named, never hidden)."""
    return list_plugins(weights_dir=settings.PREFLAB_WEIGHTS_DIR)


def metric_lookup(*, project: Project, name: str, version: str | None = None) -> Metric | None:
    """The metric a project means by ``name`` (and ``version``): its own before a global one; without a
    version, the newest version of that name."""
    candidates = Metric.objects.filter(Q(project=project) | Q(project__isnull=True), name=name)
    if version:
        candidates = candidates.filter(version=version)
    return candidates.order_by(F("project_id").desc(nulls_last=True), "-id").first()


def metric_scores_newest(*, project: Project, metric: Metric | None = None) -> QuerySet[MetricScore]:
    """Every image's newest score of each metric in the project (the score of its latest run)."""
    scores = MetricScore.objects.filter(run__project=project)
    if metric is not None:
        scores = scores.filter(metric=metric)
    return scores.newest()


def project_metrics(*, project: Project) -> list[Metric]:
    """The project's own metrics and every global metric with a run in the project, by name and version."""
    used = MetricRun.objects.filter(project=project).values("metrics")
    return list(Metric.objects.filter(Q(project=project) | Q(pk__in=used)).distinct().order_by("name", "version"))


def metric_coverage(*, project: Project) -> dict[int, int]:
    """metric id → images of the project with a score of it."""
    rows = metric_scores_newest(project=project).values("metric_id").annotate(n=Count("id")).order_by()
    return {r["metric_id"]: r["n"] for r in rows}


def metric_runs_by_metric(*, project: Project) -> dict[int, list[MetricRun]]:
    """metric id → the project's succeeded runs that include it, newest first."""
    out: dict[int, list[MetricRun]] = {}
    runs = (MetricRun.metrics.through.objects.filter(metricrun__project=project, metricrun__status=JobStatus.SUCCEEDED)
            .select_related("metricrun").order_by("-metricrun_id"))
    for link in runs:
        out.setdefault(link.metric_id, []).append(link.metricrun)
    return out


def metric_runs(*, project: Project, limit: int = 30) -> QuerySet[MetricRun]:
    return MetricRun.objects.filter(project=project).prefetch_related("metrics").order_by("-id")[:limit]


def metric_runs_pending(*, project: Project) -> QuerySet[MetricRun]:
    """Queued or running computations of the project (what the progress bars follow)."""
    return MetricRun.objects.filter(project=project, status__in=ACTIVE_STATUSES).prefetch_related("metrics") \
        .order_by("-id")


def metric_set_scores_newest(*, project: Project) -> QuerySet[MetricSetScore]:
    """The newest value of each set-level metric for each set (source model) of the project."""
    newer = MetricSetScore.objects.filter(metric_id=OuterRef("metric_id"), set_name=OuterRef("set_name"),
                                          run__project=project, run_id__gt=OuterRef("run_id"))
    return (MetricSetScore.objects.filter(run__project=project).filter(~Exists(newer))
            .select_related("metric", "run").order_by("metric__name", "set_name"))


def item_metric_scores(*, item) -> list[dict]:
    """Every metric score of one image, grouped by metric: the newest, and the earlier runs' values."""
    rows = (MetricScore.objects.filter(item=item).select_related("metric", "run")
            .order_by("metric__name", "metric__version", "metric_id", "-run_id"))
    out: list[dict] = []
    for score in rows:
        if out and out[-1]["metric"].pk == score.metric_id:
            out[-1]["earlier"].append(score)
        else:
            out.append({"metric": score.metric, "newest": score, "earlier": []})
    return out


def metric_scores_export_rows(*, project: Project):
    """The rows of the scores download: every image's newest score of every per-image metric."""
    return (MetricScore.objects.filter(run__project=project).newest()
            .order_by("metric__name", "metric__version", "item_id")
            .values_list("item_id", "item__sha256", "item__original_name", "item__source_model", "metric__name",
                         "metric__version", "value", "run_id", "run__source", "created_at")
            .iterator(chunk_size=5000))


def metric_scores_query(*, project: Project, metric: str | None = None, version: str | None = None,
                        run: str | int | None = None, item: str | int | None = None) -> QuerySet[MetricScore]:
    """The API's score list: every image's newest score (of one metric, or of one image), or one run's
    scores. Unknown metric, run or image → :class:`~annotator.errors.NotFound`; a malformed id → InvalidInput."""
    scores = MetricScore.objects.filter(run__project=project)
    if run not in (None, ""):
        if not str(run).isdigit():
            raise InvalidInput("run must be a run id.", field="run")
        if not MetricRun.objects.filter(project=project, pk=int(run)).exists():
            raise NotFound(f"No metric run {run} in this project.", field="run")
        scores = scores.filter(run_id=int(run))
    else:
        scores = scores.newest()
    if metric:
        found = metric_lookup(project=project, name=metric, version=version or None)
        if found is None:
            raise NotFound(f"No metric '{metric}'" + (f" version '{version}'" if version else "") + " here.",
                           field="metric")
        scores = scores.filter(metric=found)
    if item not in (None, ""):
        if not str(item).isdigit():
            raise InvalidInput("item must be an item id.", field="item")
        scores = scores.filter(item_id=int(item))
    return scores


# ------------------------------------------------------------------------------------------------
# Calibration reports
# ------------------------------------------------------------------------------------------------


def calibration_report_latest(*, project: Project) -> CalibrationReport | None:
    return CalibrationReport.objects.filter(project=project, status=JobStatus.SUCCEEDED).order_by("-id").first()


def calibration_report_state(*, project: Project) -> dict:
    """The latest succeeded calibration report, the pending one, a newer failure, and what arrived since."""
    latest = calibration_report_latest(project=project)
    failed = CalibrationReport.objects.filter(project=project, status=JobStatus.FAILED)
    if latest is not None:
        failed = failed.filter(pk__gt=latest.pk)
    new_data = None
    if latest is not None:
        judgments = Judgment.objects.filter(project=project, is_check=False)
        runs = MetricRun.objects.filter(project=project, status=JobStatus.SUCCEEDED)
        if latest.cutoff_judgment_id is not None:
            judgments = judgments.filter(id__gt=latest.cutoff_judgment_id)
        if latest.cutoff_metric_run_id is not None:
            runs = runs.filter(id__gt=latest.cutoff_metric_run_id)
        new_data = {"judgments": judgments.count(), "metric_runs": runs.count()}
    return {
        "stored": latest,
        "pending": CalibrationReport.objects.filter(project=project, status__in=ACTIVE_STATUSES).order_by("-id").first(),
        "failed": failed.order_by("-id").first(),
        "new_data": new_data,
    }


# ------------------------------------------------------------------------------------------------
# Calibration rounds and gates
# ------------------------------------------------------------------------------------------------


def rounds_of(*, project: Project) -> QuerySet[CalibrationRound]:
    return (CalibrationRound.objects.filter(project=project).select_related("created_by", "gate__metric", "pool")
            .annotate(n_rankings=Count("pool__tasks__rank_answers", distinct=True)))


def round_get(*, project: Project, number: int) -> CalibrationRound:
    round_ = rounds_of(project=project).filter(number=number).first()
    if round_ is None:
        raise NotFound(f"This project has no round {number}.")
    return round_


def round_result_latest(*, round_: CalibrationRound) -> RoundResult | None:
    return round_.results.filter(status=JobStatus.SUCCEEDED).order_by("-id").first()


def round_result_newest(*, project: Project) -> RoundResult | None:
    """The newest succeeded result of any of the project's rounds."""
    return RoundResult.objects.filter(round__project=project, status=JobStatus.SUCCEEDED).order_by("-id").first()


def round_result_pending(*, round_: CalibrationRound) -> RoundResult | None:
    return round_.results.filter(status__in=ACTIVE_STATUSES).order_by("-id").first()


def round_n_rankings(*, round_: CalibrationRound) -> int:
    if round_.pool_id is None:
        return 0
    return RankAnswer.objects.filter(task__pool_id=round_.pool_id).count()


def gates_of(*, project: Project) -> QuerySet[MetricGate]:
    return MetricGate.objects.filter(project=project).select_related("metric", "created_by")


def gate_history(*, project: Project, limit: int = 500) -> QuerySet[GateChange]:
    return (GateChange.objects.filter(gate__project=project).select_related("gate__metric", "changed_by", "round")
            .order_by("-id")[:limit])


def gate_proposals_pending(*, project: Project) -> QuerySet[GateProposal]:
    return (GateProposal.objects.filter(gate__project=project, status="pending")
            .select_related("gate__metric", "round").order_by("-id"))


def gate_decisions(*, project: Project, item_ids=None) -> tuple[list[MetricGate], dict[int, list]]:
    """Every active gate's decision for the project's images (or ``item_ids``): ``{item_id: [(score, passed)
    per gate]}``, ``passed`` None where the image has no score of the gate's metric."""
    gates = list(gates_of(project=project).filter(is_active=True))
    decisions: dict[int, list] = {}
    ids = list(item_ids) if item_ids is not None else None
    for g, gate in enumerate(gates):
        scores = MetricScore.objects.newest().filter(item__project=project, metric=gate.metric)
        if ids is not None:
            scores = scores.filter(item_id__in=ids)
        for item_id, value in scores.values_list("item_id", "value").iterator(chunk_size=20_000):
            decisions.setdefault(item_id, [(None, None)] * len(gates))[g] = (value, gate.passes(value))
    return gates, decisions


def rounds_drift(*, project: Project, half_life: float = 3.0) -> list[dict]:
    """Each metric's agreement with the humans round by round (the latest result of every round that has
    one, oldest first), its time-decayed pooled estimate, and the CUSUM drift alarm over the rounds."""
    from ranking.core.rounds import cusum_drift, pooled_agreement

    results = []
    for round_ in CalibrationRound.objects.filter(project=project).exclude(status="draft").order_by("number"):
        result = round_result_latest(round_=round_)
        if result is not None:
            results.append((round_, result.result))
    series: dict[tuple, dict] = {}
    for position, (round_, content) in enumerate(results):
        for row in content.get("metrics", []):
            key = (row["name"], row["version"])
            entry = series.setdefault(key, {"name": row["name"], "version": row["version"], "rounds": []})
            entry["rounds"].append({"number": round_.number, "position": position, "accuracy": row["accuracy"],
                                    "n_items": row["n_items"],
                                    "round_sd": float((content.get("alarm") or {}).get("round_sd") or 0.0),
                                    "ci_low": row["accuracy_ci_low"], "ci_high": row["accuracy_ci_high"],
                                    "tau_b": row["tau_b"], "p_value": row["p_value"]})
    out = []
    last = len(results) - 1
    for entry in series.values():
        rows = entry["rounds"]
        values = np.array([r["accuracy"] for r in rows])
        # A round's bootstrap interval collapses when its rankings all agree (e.g. one ranking, a metric that
        # orders every pair as the humans did): its standard error is floored at the binomial one of its
        # m item pairs, with the accuracy smoothed by half a pair, sqrt(p(1−p)/m), p = (a·m + ½)/(m + 1).
        # A bootstrap over the raters also leaves out the round-to-round spread of the sampled images; the
        # result's simulation measured that spread at the round's size (``round_sd``), and it floors the SE
        # too, so that the alarm's false-alarm rate is the one the simulation states.
        m = np.array([r["n_items"] * (r["n_items"] - 1) / 2 for r in rows], dtype=float)
        smoothed = (values * m + 0.5) / (m + 1)
        ses = np.maximum.reduce([
            (np.array([r["ci_high"] for r in rows]) - np.array([r["ci_low"] for r in rows])) / (2 * Z95),
            np.sqrt(smoothed * (1 - smoothed) / m), np.array([r["round_sd"] for r in rows])])
        pooled = pooled_agreement(values, values - Z95 * ses, values + Z95 * ses,
                                  ages=np.array([last - r["position"] for r in rows], float), half_life=half_life)
        # a normal interval around an accuracy can pass 0 or 1 (all rounds at 0 or 1, floored SEs): clipped to [0, 1]
        entry["pooled"] = {"estimate": pooled.estimate, "ci_low": max(0.0, pooled.ci_low),
                           "ci_high": min(1.0, pooled.ci_high), "half_life": half_life}
        n_baseline = settings.PREFLAB_ROUND_ALARM_BASELINE
        entry["n_baseline"] = n_baseline
        if len(rows) > n_baseline:
            alarm = cusum_drift(values, ses, n_baseline=n_baseline, h=settings.PREFLAB_ROUND_ALARM_H)
            entry["alarm"] = {"alarm_at": (rows[alarm.alarm_at]["number"] if alarm.alarm_at is not None else None),
                              "statistic": [float(s) for s in alarm.statistic], "baseline": alarm.baseline,
                              "h": alarm.h, "shift": alarm.shift}
        else:
            entry["alarm"] = None
        out.append(entry)
    return out
