"""Reads for the ranking app: leaderboards, fit history, personal rankings, agreement reports and
the datasheet's own reads (demographics, instruction and consent histories)."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from annotator.models import (
    DEMOGRAPHIC_FIELDS,
    Annotation,
    ConsentVersion,
    Demographics,
    InstructionVersion,
    Judgment,
    Project,
    Rater,
    demographic_field_label,
)
from ranking.core.pairwise import PREFER_NOT
from ranking.loaders import demographic_labels
from ranking.models import (
    ACTIVE_STATUSES,
    AgreementReport,
    DatasheetNote,
    FitModel,
    FitRun,
    FitStatus,
    ItemScore,
    JobStatus,
    RaterItemOffset,
)

ELO_BASE = 1500.0
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
    """How many judgments and annotations arrived after the report's cut-offs."""
    judgments = Judgment.objects.filter(project_id=report.project_id)
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
    return (Judgment.objects.filter(project=project).count()
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
    judged = Q() if cutoff_judgment_id is None else Q(judgments__id__lte=cutoff_judgment_id)
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
