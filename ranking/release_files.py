"""The files of a dataset release: Parquet tables, RichHF-18K-style records, images and the dataset card.

Every table is streamed: rows are read in keyset pages through a streaming cursor, each page becomes one
Arrow record batch and one Parquet row group, and is dropped — memory stays bounded whatever the project's
size. Raters appear only as pseudonyms salted per release (``sha256(salt:public_id)``, 16 hex digits),
never as crowd-platform ids. Demographic answers given by fewer than ``k`` raters of the release are
replaced by ``"(suppressed)"``; ``exclude_free_text`` leaves out the free-text answers (country, languages).

Folder layout (each table folder is a ``datasets`` config named in the card's YAML)::

    README.md                 dataset card (YAML metadata + datasheet)
    judgments/*.parquet       pairwise judgments
    rankings/*.parquet        rank answers (calibration rounds left out)
    annotations/*.parquet     rich feedback and checklist answers, every rater's raw marks
    items/*.parquet           images: file, sha256, prompt, source model, metadata, metric scores, gates
    fits/*.parquet            the newest Bradley–Terry fit: strengths with 95% CIs
    richhf/*.parquet          consolidated per-image records in RichHF-18K's form (512×512 8-bit PNG maps)
    images/<sha256>.<ext>     the images themselves (optional)
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from annotator.feedback import prompt_tokens
from annotator.models import DEMOGRAPHIC_FIELDS, Annotation, Demographics, Item, Judgment, Project, RankAnswer
from ranking.core.heatmaps import consolidate, keyword_majority
from ranking.models import FitModel, FitRun, FitStatus, ItemScore, MetricGate, MetricScore

PAGE_ROWS = 50_000
RICHHF_SIZE = 512
FREE_TEXT_FIELDS = ("country", "languages")
SUPPRESSED = "(suppressed)"
UTC_US = pa.timestamp("us", tz="UTC")


class Pseudonyms:
    """Rater pseudonyms of one release: salted, so releases cannot be joined on raters."""

    def __init__(self, salt: str):
        self.salt = salt
        self._cache: dict[int, str] = {}

    def __call__(self, rater_id: int, public_id: str) -> str:
        value = self._cache.get(rater_id)
        if value is None:
            value = hashlib.sha256(f"{self.salt}:{public_id}".encode()).hexdigest()[:16]
            self._cache[rater_id] = value
        return value


def demographic_table(*, project: Project, k: int, exclude_free_text: bool) -> tuple[dict[int, dict], dict]:
    """Each rater's released demographic answers (rare answers suppressed) and what was suppressed."""
    fields = [f for f in DEMOGRAPHIC_FIELDS if not (exclude_free_text and f in FREE_TEXT_FIELDS)]
    rows = {r["rater_id"]: r for r in Demographics.objects.filter(rater__project=project, rater__pool__isnull=True)
            .values("rater_id", *fields)}
    suppressed: dict[str, int] = {}
    for field in fields:
        counts = Counter(r[field] for r in rows.values() if r[field])
        rare = {value for value, n in counts.items() if n < k}
        if rare:
            suppressed[field] = sum(counts[v] for v in rare)
            for r in rows.values():
                if r[field] in rare:
                    r[field] = SUPPRESSED
    return rows, {"fields": fields, "suppressed": suppressed, "k": k}


class _TableWriter:
    """One Parquet file written a record batch (row group) at a time."""

    def __init__(self, folder: Path, name: str, schema: pa.Schema):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{name}.parquet"
        self.schema = schema
        self.writer = pq.ParquetWriter(self.path, schema, compression="zstd")
        self.rows = 0

    def write(self, columns: dict[str, list]) -> None:
        if not columns or not next(iter(columns.values())):
            return
        batch = pa.record_batch([pa.array(columns[f.name], type=f.type) for f in self.schema], schema=self.schema)
        self.writer.write_batch(batch)
        self.rows += batch.num_rows

    def close(self) -> dict:
        self.writer.close()
        if self.rows == 0:  # `datasets` cannot load an empty split: an empty table is left out (the card says so)
            self.path.unlink()
            if not any(self.path.parent.iterdir()):
                self.path.parent.rmdir()
            return {"file": None, "rows": 0, "bytes": 0}
        return {"file": str(self.path.name), "rows": self.rows, "bytes": self.path.stat().st_size}


def _pages(queryset, fields: tuple[str, ...], page_rows: int = PAGE_ROWS) -> Iterator[list[tuple]]:
    last = 0
    while True:
        page = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", *fields)[:page_rows]
                    .iterator(chunk_size=10_000))
        if not page:
            return
        yield page
        last = page[-1][0]


def _demographic_fields(demo_meta: dict) -> list[pa.Field]:
    return [pa.field(f"rater_{f}", pa.string()) for f in demo_meta["fields"]]


def _demographics(columns: dict, rater_ids: list[int], demographics: dict, demo_meta: dict) -> None:
    for f in demo_meta["fields"]:
        columns[f"rater_{f}"] = [(demographics.get(r) or {}).get(f) or None for r in rater_ids]


def write_judgments(root: Path, *, project: Project, cutoff_id: int | None, pseudonym: Pseudonyms,
                    demographics: dict, demo_meta: dict) -> dict:
    schema = pa.schema([
        ("judgment_id", pa.int64()), ("submitted_at", UTC_US), ("shown_at", UTC_US), ("rater", pa.string()),
        ("left_item_id", pa.int64()), ("left_item_sha256", pa.string()), ("left_source_model", pa.string()),
        ("right_item_id", pa.int64()), ("right_item_sha256", pa.string()), ("right_source_model", pa.string()),
        ("prompt", pa.string()), ("choice", pa.string()), ("winner_id", pa.int64()), ("loser_id", pa.int64()),
        ("is_tie", pa.bool_()), ("is_repeat", pa.bool_()), ("flags", pa.list_(pa.string())),
        ("instruction_version", pa.int32()), ("response_time_ms", pa.int64()), *_demographic_fields(demo_meta),
    ])
    out = _TableWriter(root / "judgments", "judgments", schema)
    qs = Judgment.objects.filter(project=project)
    qs = qs.none() if cutoff_id is None else qs.filter(id__lte=cutoff_id)
    fields = ("submitted_at", "shown_at", "rater_id", "rater__public_id", "left_item_id", "left_item__sha256",
              "left_item__source_model", "right_item_id", "right_item__sha256", "right_item__source_model",
              "left_item__prompt", "choice", "winner_id", "loser_id", "is_tie", "is_repeat", "flags",
              "instruction_version__version", "response_time_ms")
    for page in _pages(qs, fields):
        rows = list(zip(*page))
        columns = {
            "judgment_id": list(rows[0]), "submitted_at": list(rows[1]), "shown_at": list(rows[2]),
            "rater": [pseudonym(r, p) for r, p in zip(rows[3], rows[4])],
            "left_item_id": list(rows[5]), "left_item_sha256": list(rows[6]), "left_source_model": list(rows[7]),
            "right_item_id": list(rows[8]), "right_item_sha256": list(rows[9]), "right_source_model": list(rows[10]),
            "prompt": list(rows[11]), "choice": list(rows[12]), "winner_id": list(rows[13]),
            "loser_id": list(rows[14]), "is_tie": list(rows[15]), "is_repeat": list(rows[16]),
            "flags": [list(f or []) for f in rows[17]], "instruction_version": list(rows[18]),
            "response_time_ms": list(rows[19]),
        }
        _demographics(columns, list(rows[3]), demographics, demo_meta)
        out.write(columns)
    return out.close()


def write_rankings(root: Path, *, project: Project, cutoff_id: int | None, pseudonym: Pseudonyms,
                   demographics: dict, demo_meta: dict) -> dict:
    schema = pa.schema([
        ("ranking_id", pa.int64()), ("submitted_at", UTC_US), ("rater", pa.string()),
        ("shown_order", pa.list_(pa.int64())), ("ranking", pa.list_(pa.list_(pa.int64()))),
        ("has_ties", pa.bool_()), ("instruction_version", pa.int32()), ("response_time_ms", pa.int64()),
        *_demographic_fields(demo_meta),
    ])
    out = _TableWriter(root / "rankings", "rankings", schema)
    qs = RankAnswer.objects.filter(project=project, task__pool__isnull=True)  # rounds are not study data
    qs = qs.none() if cutoff_id is None else qs.filter(id__lte=cutoff_id)
    fields = ("submitted_at", "rater_id", "rater__public_id", "shown_order", "ranking", "has_ties",
              "instruction_version__version", "response_time_ms")
    for page in _pages(qs, fields):
        rows = list(zip(*page))
        columns = {"ranking_id": list(rows[0]), "submitted_at": list(rows[1]),
                   "rater": [pseudonym(r, p) for r, p in zip(rows[2], rows[3])],
                   "shown_order": list(rows[4]), "ranking": list(rows[5]), "has_ties": list(rows[6]),
                   "instruction_version": list(rows[7]), "response_time_ms": list(rows[8])}
        _demographics(columns, list(rows[2]), demographics, demo_meta)
        out.write(columns)
    return out.close()


POINT = pa.struct([("x", pa.float64()), ("y", pa.float64()), ("kind", pa.string())])


def write_annotations(root: Path, *, project: Project, cutoff_id: int | None, pseudonym: Pseudonyms,
                      demographics: dict, demo_meta: dict) -> dict:
    dims = [d["name"] for d in project.likert_dimensions or []]
    schema = pa.schema([
        ("annotation_id", pa.int64()), ("submitted_at", UTC_US), ("rater", pa.string()), ("item_id", pa.int64()),
        ("kind", pa.string()), ("points", pa.list_(POINT)), ("misaligned_words", pa.list_(pa.int64())),
        *[(f"score_{d}", pa.int8()) for d in dims], ("checklist_answers", pa.string()),
        ("instruction_version", pa.int32()), ("response_time_ms", pa.int64()), *_demographic_fields(demo_meta),
    ])
    out = _TableWriter(root / "annotations", "annotations", schema)
    qs = Annotation.objects.filter(project=project)
    qs = qs.none() if cutoff_id is None else qs.filter(id__lte=cutoff_id)
    fields = ("submitted_at", "rater_id", "rater__public_id", "item_id", "kind", "points", "misaligned_words",
              "scores", "answers", "instruction_version__version", "response_time_ms")
    for page in _pages(qs, fields):
        rows = list(zip(*page))
        columns = {
            "annotation_id": list(rows[0]), "submitted_at": list(rows[1]),
            "rater": [pseudonym(r, p) for r, p in zip(rows[2], rows[3])], "item_id": list(rows[4]),
            "kind": list(rows[5]),
            "points": [[{"x": float(p["x"]), "y": float(p["y"]), "kind": p.get("kind", "artifact")} for p in pts or []]
                       for pts in rows[6]],
            "misaligned_words": [list(w or []) for w in rows[7]],
            "checklist_answers": [json.dumps(a, sort_keys=True) if a else None for a in rows[9]],
            "instruction_version": list(rows[10]), "response_time_ms": list(rows[11]),
        }
        for d in dims:
            columns[f"score_{d}"] = [(s or {}).get(d) for s in rows[8]]
        _demographics(columns, list(rows[2]), demographics, demo_meta)
        out.write(columns)
    return out.close()


def write_items(root: Path, *, project: Project) -> dict:
    """Every image (retired ones too, flagged) with its newest metric scores and active gates' decisions."""
    scores: dict[int, dict[str, float]] = defaultdict(dict)
    metric_columns: set[str] = set()
    for item_id, name, version, value in (MetricScore.objects.newest().filter(item__project=project, metric__kind="item")
                                          .values_list("item_id", "metric__name", "metric__version", "value")
                                          .iterator(chunk_size=20_000)):
        column = f"metric_{name}_v{version}"
        scores[item_id][column] = value
        metric_columns.add(column)
    gates = list(MetricGate.objects.filter(project=project, is_active=True).select_related("metric"))
    gate_columns = [f"gate_{g.metric.name}_{g.dimension}" for g in gates]
    metric_of_gate = [f"metric_{g.metric.name}_v{g.metric.version}" for g in gates]
    schema = pa.schema([
        ("item_id", pa.int64()), ("file_name", pa.string()), ("sha256", pa.string()), ("prompt", pa.string()),
        ("source_model", pa.string()), ("width", pa.int32()), ("height", pa.int32()), ("metadata", pa.string()),
        ("retired", pa.bool_()), *[(c, pa.float64()) for c in sorted(metric_columns)],
        *[(c, pa.bool_()) for c in gate_columns],
    ])
    out = _TableWriter(root / "items", "items", schema)
    fields = ("original_name", "sha256", "prompt", "source_model", "width", "height", "metadata", "retired_at")
    for page in _pages(Item.objects.filter(project=project), fields):
        rows = list(zip(*page))
        ids = list(rows[0])
        columns = {"item_id": ids, "file_name": list(rows[1]), "sha256": list(rows[2]), "prompt": list(rows[3]),
                   "source_model": list(rows[4]), "width": list(rows[5]), "height": list(rows[6]),
                   "metadata": [json.dumps(m, sort_keys=True) if m else None for m in rows[7]],
                   "retired": [r is not None for r in rows[8]]}
        for c in metric_columns:
            columns[c] = [scores[i].get(c) for i in ids]
        for gate, column, metric_column in zip(gates, gate_columns, metric_of_gate):
            columns[column] = [gate.passes(scores[i].get(metric_column)) for i in ids]
        out.write(columns)
    return out.close()


def write_fits(root: Path, *, project: Project) -> dict:
    fit = (FitRun.objects.filter(project=project, model=FitModel.BT, status=FitStatus.SUCCEEDED)
           .order_by("-finished_at", "-id").first())
    schema = pa.schema([("fit_id", pa.int64()), ("item_id", pa.int64()), ("strength", pa.float64()),
                        ("se", pa.float64()), ("ci_low", pa.float64()), ("ci_high", pa.float64()),
                        ("rank", pa.int32()), ("wins", pa.float64()), ("losses", pa.float64()),
                        ("ties", pa.float64()), ("n_judgments", pa.int64())])
    out = _TableWriter(root / "fits", "fits", schema)
    if fit is not None:
        fields = ("item_id", "strength", "se", "ci_low", "ci_high", "rank", "wins", "losses", "ties", "n_judgments")
        for page in _pages(ItemScore.objects.filter(fit=fit), fields):
            rows = list(zip(*page))
            out.write({"fit_id": [fit.pk] * len(page), **{name: list(rows[k + 1]) for k, name in enumerate(fields)}})
    result = out.close()
    result["fit_id"] = fit.pk if fit else None
    return result


def _png(heat: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.clip(np.rint(heat * 255), 0, 255).astype(np.uint8), mode="L").save(buf, format="PNG")
    return buf.getvalue()


def write_richhf(root: Path, *, project: Project, cutoff_id: int | None) -> dict:
    """One record per image with rich feedback, in RichHF-18K's form: 512×512 8-bit artifact and
    misalignment maps (the mean over raters of their disks, radius = the project's effective radius ×
    512, ×255), ``prompt_misalignment_label`` (space-separated 0/1 per prompt token, 0 = misaligned by a
    majority of raters), and the four mean scores (RichHF's names; NaN where the project does not ask)."""
    schema = pa.schema([
        ("item_id", pa.int64()), ("filename", pa.string()), ("prompt", pa.string()), ("n_raters", pa.int32()),
        ("artifact_map", pa.binary()), ("misalignment_map", pa.binary()),
        ("prompt_misalignment_label", pa.string()), ("artifact_score", pa.float64()),
        ("misalignment_score", pa.float64()), ("aesthetics_score", pa.float64()), ("overall_score", pa.float64()),
    ])
    out = _TableWriter(root / "richhf", "richhf", schema)
    if cutoff_id is None:
        return out.close()
    radius = project.effective_radius * RICHHF_SIZE
    per_item: dict[int, list] = defaultdict(list)
    for item_id, points, words, scores in (Annotation.objects.filter(project=project, kind="rich", id__lte=cutoff_id)
                                           .order_by("item_id", "id")
                                           .values_list("item_id", "points", "misaligned_words", "scores")
                                           .iterator(chunk_size=10_000)):
        per_item[item_id].append((points or [], words or [], scores or {}))
    items = dict(Item.objects.filter(pk__in=list(per_item)).values_list("pk", "original_name"))
    prompts = dict(Item.objects.filter(pk__in=list(per_item)).values_list("pk", "prompt"))
    names = {"artifact_score": "plausibility", "misalignment_score": "alignment", "aesthetics_score": "aesthetics",
             "overall_score": "overall"}
    batch: dict[str, list] = defaultdict(list)
    for item_id in sorted(per_item):
        answers = per_item[item_id]

        def point_sets(kind: str, answers=answers):
            return [np.array([[p["x"] * RICHHF_SIZE, p["y"] * RICHHF_SIZE] for p in pts if p.get("kind") == kind],
                             dtype=np.float64).reshape(-1, 2) for pts, _, _ in answers]

        tokens = prompt_tokens(prompts[item_id])
        votes = np.zeros((len(answers), len(tokens)), dtype=bool)
        for r, (_, words, _) in enumerate(answers):
            for w in words:
                if 0 <= w < len(tokens):
                    votes[r, w] = True
        misaligned = keyword_majority(votes) if len(tokens) else np.zeros(0, dtype=bool)
        batch["item_id"].append(item_id)
        batch["filename"].append(items[item_id])
        batch["prompt"].append(prompts[item_id])
        batch["n_raters"].append(len(answers))
        batch["artifact_map"].append(_png(consolidate(point_sets("artifact"), RICHHF_SIZE, RICHHF_SIZE, radius)))
        batch["misalignment_map"].append(
            _png(consolidate(point_sets("misalignment"), RICHHF_SIZE, RICHHF_SIZE, radius)))
        batch["prompt_misalignment_label"].append(" ".join("0" if m else "1" for m in misaligned))
        for column, dim in names.items():
            values = [s[dim] for _, _, s in answers if s.get(dim) is not None]
            batch[column].append(float(np.mean(values)) if values else None)
        if len(batch["item_id"]) >= 500:
            out.write(batch)
            batch = defaultdict(list)
    out.write(batch)
    return out.close()


def image_bytes(*, project: Project) -> int:
    """What copying the project's images into a release would take (bytes, from storage)."""
    total = 0
    for item in Item.objects.filter(project=project).only("image").iterator(chunk_size=2000):
        try:
            total += item.image.size
        except (OSError, ValueError):
            continue
    return total


def copy_images(root: Path, *, project: Project) -> dict:
    folder = root / "images"
    folder.mkdir(parents=True, exist_ok=True)
    n = size = 0
    for item in Item.objects.filter(project=project).only("image", "sha256").iterator(chunk_size=2000):
        target = folder / f"{item.sha256}{Path(item.image.name).suffix.lower()}"
        with item.image.open("rb") as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, length=1 << 20)
        n += 1
        size += target.stat().st_size
    return {"files": n, "bytes": size}
