"""Rich feedback consolidation: the raters' annotations of an item → heatmaps, word votes, score summaries.

Reads annotations and hands arrays to the pure numerics in :mod:`ranking.core.heatmaps`. Nothing here
writes to the database.

Map size. Heatmaps are computed on a grid of the item's own aspect ratio: the image's pixel size,
scaled down (keeping the aspect ratio) so that the longer side is at most :data:`MAP_MAX_SIDE` = 512
pixels. A 512 × 512 image therefore gets the 512 × 512 map RichHF-18K publishes. The disk radius is
``project.effective_radius × map height`` (RichHF-18K: 1/20 of the height), so disks are round in the
image. A rater who answered the task but clicked no point of a kind contributes an empty map to that
kind's mean, as in the RichHF-18K protocol.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
from django.db.models import QuerySet
from PIL import Image

from annotator.feedback import POINT_KINDS, prompt_tokens
from annotator.models import Annotation, Item, Project, TaskKind
from ranking.core import heatmaps

MAP_MAX_SIDE = 512

#: Overlay colours per point kind (RGB), matching the rater page.
KIND_COLOURS = {"artifact": (229, 62, 62), "misalignment": (49, 130, 206)}


def map_size(*, height: int, width: int, max_side: int = MAP_MAX_SIDE) -> tuple[int, int]:
    """(height, width) of the heatmap grid of an image: its own size, the longer side at most ``max_side``."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


@dataclass(frozen=True)
class RaterAnswer:
    rater: str  # pseudonymous public id
    points: list[dict]
    misaligned_words: list[int]
    scores: dict[str, int]
    submitted_at: datetime


@dataclass(frozen=True)
class ItemFeedback:
    """The consolidated rich feedback of one item (and its checklist answers, if any)."""

    item_id: int
    prompt: str
    tokens: list[str]
    image_height: int
    image_width: int
    map_height: int
    map_width: int
    radius_px: float
    answers: list[RaterAnswer]
    heatmaps: dict[str, np.ndarray]
    heatmap_agreement: dict[str, float | None]
    word_vote_share: list[float]
    word_majority: list[bool]
    scores: list[dict]
    checklist: list[dict] = field(default_factory=list)

    @property
    def n_raters(self) -> int:
        return len(self.answers)

    def as_record(self) -> dict:
        """A JSON-ready record (without the maps themselves: they are served as PNG / .npy)."""
        maps = {}
        for kind, m in self.heatmaps.items():
            maps[kind] = {
                "max": float(m.max()) if m.size else 0.0,
                "mean": float(m.mean()) if m.size else 0.0,
                "marked_share": float((m > 0).mean()) if m.size else 0.0,
                "rater_agreement_loo_correlation": self.heatmap_agreement.get(kind),
            }
        return {
            "item": self.item_id,
            "prompt": self.prompt,
            "tokens": self.tokens,
            "n_raters": self.n_raters,
            "map": {"height": self.map_height, "width": self.map_width, "radius_px": self.radius_px},
            "heatmaps": maps,
            "misaligned_words": [
                {"index": i, "word": w, "vote_share": s, "majority": m}
                for i, (w, s, m) in enumerate(zip(self.tokens, self.word_vote_share, self.word_majority))
            ],
            "scores": self.scores,
            "checklist": self.checklist,
            "raters": [
                {"rater": a.rater, "points": a.points, "misaligned_words": a.misaligned_words,
                 "scores": a.scores, "submitted_at": a.submitted_at.isoformat()}
                for a in self.answers
            ],
        }


def _nan_to_none(value: float) -> float | None:
    return None if value is None or np.isnan(value) else float(value)


def _annotations(items) -> QuerySet[Annotation]:
    return (
        # excluded raters' answers are left out, as from every statistic (annotator.services.quality)
        Annotation.objects.filter(item__in=items, rater__excluded_at__isnull=True).select_related("rater")
        .order_by("id")
        .only("item_id", "kind", "points", "misaligned_words", "scores", "answers", "submitted_at",
              "rater__public_id")
    )


def items_feedback(*, items: list[Item], project: Project) -> list[ItemFeedback]:
    """:func:`item_feedback` for many items of one project, with one query for all their annotations."""
    by_item: dict[int, list[Annotation]] = {item.pk: [] for item in items}
    for annotation in _annotations(items):
        by_item[annotation.item_id].append(annotation)
    return [item_feedback(item=item, project=project, annotations=by_item[item.pk]) for item in items]


def item_feedback(*, item: Item, project: Project | None = None,
                  annotations: list[Annotation] | None = None) -> ItemFeedback:
    """Consolidate every rich-feedback annotation of ``item`` (see the module docstring for the grid).

    ``annotations``: the item's annotations when already loaded (see :func:`items_feedback`).
    """
    project = project or item.project
    rows = annotations if annotations is not None else list(_annotations([item]))
    rich = [a for a in rows if a.kind == TaskKind.RICH]
    answers = [RaterAnswer(rater=a.rater.public_id, points=a.points, misaligned_words=a.misaligned_words,
                           scores=a.scores, submitted_at=a.submitted_at) for a in rich]
    tokens = prompt_tokens(item.prompt)
    mh, mw = map_size(height=item.height, width=item.width)
    radius = float(project.effective_radius) * mh

    maps: dict[str, np.ndarray] = {}
    agreement: dict[str, float | None] = {}
    for kind in POINT_KINDS:
        per_rater = [
            heatmaps.normalised_to_pixels(
                np.array([[p["x"], p["y"]] for p in a.points if p["kind"] == kind], dtype=np.float64).reshape(-1, 2),
                mh, mw,
            )
            for a in answers
        ]
        maps[kind] = heatmaps.consolidate(per_rater, mh, mw, radius)
        if len(per_rater) >= 2:
            disks = np.stack([heatmaps.disk_map(p, mh, mw, radius) for p in per_rater])
            agreement[kind] = _nan_to_none(heatmaps.leave_one_out_correlation(disks))
        else:
            agreement[kind] = None

    if answers and tokens:
        votes = np.zeros((len(answers), len(tokens)), dtype=bool)
        for k, a in enumerate(answers):
            idx = [i for i in a.misaligned_words if 0 <= i < len(tokens)]
            votes[k, idx] = True
        share = [float(v) for v in heatmaps.vote_share(votes)]
        majority = [bool(v) for v in heatmaps.keyword_majority(votes)]
    else:
        share, majority = [0.0] * len(tokens), [False] * len(tokens)

    dims = project.likert_dimensions
    scores = []
    if answers:
        values = np.array([[a.scores.get(d["name"], np.nan) for d in dims] for a in answers], dtype=np.float64)
        summary = heatmaps.score_summary(values)
        for j, d in enumerate(dims):
            scores.append({
                "name": d["name"], "label": d.get("label", d["name"]),
                "mean": _nan_to_none(summary.mean[j]), "std": _nan_to_none(summary.std[j]),
                "min": _nan_to_none(summary.min[j]), "max": _nan_to_none(summary.max[j]),
                "n": int(summary.n_scores[j]),
                "per_rater": {a.rater: a.scores.get(d["name"]) for a in answers},
            })
    else:
        scores = [{"name": d["name"], "label": d.get("label", d["name"]), "mean": None, "std": None,
                   "min": None, "max": None, "n": 0, "per_rater": {}} for d in dims]

    checks = [a for a in rows if a.kind == TaskKind.CHECKLIST]
    checklist = []
    for q in project.checklist:
        given = [a.answers[q["id"]] for a in checks if q["id"] in a.answers]
        n_yes = sum(1 for v in given if v)
        checklist.append({"id": q["id"], "dimension": q["dimension"], "question": q["question"],
                          "n_yes": n_yes, "n_no": len(given) - n_yes,
                          "share_yes": n_yes / len(given) if given else None})

    return ItemFeedback(
        item_id=item.pk, prompt=item.prompt, tokens=tokens, image_height=item.height, image_width=item.width,
        map_height=mh, map_width=mw, radius_px=radius, answers=answers, heatmaps=maps,
        heatmap_agreement=agreement, word_vote_share=share, word_majority=majority, scores=scores,
        checklist=checklist,
    )


@dataclass(frozen=True)
class ProjectFeedbackSummary:
    n_items_annotated: int
    n_annotations: int
    share_with_artifact: float | None
    share_with_misalignment: float | None
    score_histograms: list[dict]  # per dimension: name, label, counts [(score, n)], mean


def project_feedback_summary(*, project: Project) -> ProjectFeedbackSummary:
    """Distribution of each score over all ratings, and the share of annotated images with any mark."""
    marked: dict[str, set[int]] = {k: set() for k in POINT_KINDS}
    items: set[int] = set()
    dims = project.likert_dimensions
    counts = {d["name"]: {s: 0 for s in range(1, 6)} for d in dims}
    n = 0
    rows = (Annotation.objects.filter(project=project, kind=TaskKind.RICH, rater__excluded_at__isnull=True)
            .values_list("item_id", "points", "scores").iterator(chunk_size=2000))
    for item_id, points, scores in rows:
        n += 1
        items.add(item_id)
        for p in points:
            marked.setdefault(p["kind"], set()).add(item_id)
        for name, value in scores.items():
            if name in counts and value in counts[name]:
                counts[name][value] += 1
    histograms = []
    for d in dims:
        c = counts[d["name"]]
        total = sum(c.values())
        histograms.append({
            "name": d["name"], "label": d.get("label", d["name"]),
            "counts": [(str(s), c[s]) for s in range(1, 6)], "n": total,
            "mean": sum(s * k for s, k in c.items()) / total if total else None,
        })
    return ProjectFeedbackSummary(
        n_items_annotated=len(items), n_annotations=n,
        share_with_artifact=len(marked["artifact"]) / len(items) if items else None,
        share_with_misalignment=len(marked["misalignment"]) / len(items) if items else None,
        score_histograms=histograms,
    )


def heatmap_png(heat: np.ndarray, *, kind: str | None = None) -> bytes:
    """PNG of a heatmap: 0–255 grayscale (as RichHF-18K), or with ``kind`` a coloured RGBA overlay."""
    values = np.clip(np.rint(np.asarray(heat, dtype=np.float64) * 255), 0, 255).astype(np.uint8)
    if kind is None:
        image = Image.fromarray(values)
    else:
        r, g, b = KIND_COLOURS[kind]
        rgba = np.empty((*values.shape, 4), dtype=np.uint8)
        rgba[..., 0], rgba[..., 1], rgba[..., 2] = r, g, b
        rgba[..., 3] = values
        image = Image.fromarray(rgba)
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def heatmap_npy(heat: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(heat, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()
