"""The files of a dataset release: Parquet tables, RichHF-18K-style records, images and the dataset card.

Every table is streamed: rows are read in keyset pages through a streaming cursor, each page becomes one
Arrow record batch and one Parquet row group, and is dropped — memory stays bounded whatever the project's
size. Raters appear only as pseudonyms salted per release (``sha256(salt:public_id)``, 16 hex digits),
never as crowd-platform ids. Demographic answers given by fewer than ``k`` raters of the release are
replaced by ``"(suppressed)"``; ``exclude_free_text`` leaves out the free-text answers (country, languages).
Answers of raters a researcher excluded (or PrefLab screened out) are left out of every table, as they are
left out of fits (:func:`ranking.loaders.answers_included`); the manifest counts them.

Folder layout (each table folder is a ``datasets`` config named in the card's YAML)::

    README.md                 dataset card (YAML metadata + datasheet)
    judgments/*.parquet       pairwise judgments
    rankings/*.parquet        rank answers (calibration rounds left out)
    annotations/*.parquet     rich feedback and checklist answers, every rater's raw marks
    items/*.parquet           images: file, sha256, prompt, source model, metadata, metric scores, gates
    fits/*.parquet            the newest Bradley–Terry fit: strengths with 95% CIs
    rater_offsets/*.parquet   the newest hierarchical fit's per-rater offsets (only if asked)
    richhf/*.parquet          consolidated per-image records in RichHF-18K's form (512×512 8-bit PNG maps)
    images/<sha256>.<ext>     the images themselves (optional)
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import struct
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from django.db.models import TextField
from django.db.models.functions import Cast

from annotator.exports import EpochMicros
from annotator.feedback import prompt_tokens
from annotator.models import (
    DEMOGRAPHIC_FIELDS,
    Annotation,
    Demographics,
    Item,
    Judgment,
    Project,
    RankAnswer,
    Rater,
)
from ranking.core.heatmaps import coverage_counts, heatmap_8bit, keyword_majority
from ranking.loaders import answers_included
from ranking.models import FitModel, FitRun, FitStatus, ItemScore, MetricGate, MetricScore, RaterItemOffset

PAGE_ROWS = 50_000
RICHHF_SIZE = 512
FREE_TEXT_FIELDS = ("country", "languages")
SUPPRESSED = "(suppressed)"
UTC_US = pa.timestamp("us", tz="UTC")


def pseudonym(salt: str, public_id: str) -> str:
    """A rater's pseudonym in one release: salted, so releases cannot be joined on raters."""
    return hashlib.sha256(f"{salt}:{public_id}".encode()).hexdigest()[:16]


def demographic_table(*, project: Project, k: int, exclude_free_text: bool) -> tuple[dict[int, dict], dict]:
    """Each rater's released demographic answers (rare answers suppressed) and what was suppressed."""
    fields = [f for f in DEMOGRAPHIC_FIELDS if not (exclude_free_text and f in FREE_TEXT_FIELDS)]
    # excluded raters' answers are not released, so their demographics do not count towards k either
    rows = {r["rater_id"]: r for r in Demographics.objects.filter(rater__project=project, rater__pool__isnull=True,
                                                                  rater__excluded_at__isnull=True)
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


class ReleasedRaters:
    """The rater columns of every table of one release: the pseudonym and the released demographics.

    Built once per release for all the project's raters (a few thousand rows); a page of answers then
    gets its rater columns by one vectorised look-up of its rater ids (``searchsorted`` + Arrow ``take``)
    instead of a Python dictionary access per row and column.
    """

    def __init__(self, *, project: Project, salt: str, demographics: dict[int, dict], demo_meta: dict):
        self.meta = demo_meta
        raters = sorted(Rater.objects.filter(project=project).values_list("pk", "public_id"))
        self.ids = np.fromiter((pk for pk, _ in raters), dtype=np.int64, count=len(raters))
        self._columns = {"rater": pa.array([pseudonym(salt, public_id) for _, public_id in raters], pa.string())}
        for f in demo_meta["fields"]:
            self._columns[f"rater_{f}"] = pa.array(
                [(demographics.get(pk) or {}).get(f) or None for pk, _ in raters], pa.string())

    def fields(self) -> list[pa.Field]:
        """The demographic columns' schema fields (the pseudonym column is placed by each table)."""
        return [pa.field(f"rater_{f}", pa.string()) for f in self.meta["fields"]]

    def columns(self, rater_ids) -> dict[str, pa.Array]:
        """``rater`` and ``rater_<field>`` columns for these rater ids, in their order."""
        ids = np.asarray(rater_ids, dtype=np.int64)
        index = np.searchsorted(self.ids, ids)
        if ids.size and (index.max() >= self.ids.size or not np.array_equal(self.ids[index], ids)):
            raise ValueError("an answer's rater is not a rater of this project")
        take = pa.array(index)
        return {name: column.take(take) for name, column in self._columns.items()}


class _TableWriter:
    """One Parquet file written a record batch (row group) at a time."""

    def __init__(self, folder: Path, name: str, schema: pa.Schema):
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / f"{name}.parquet"
        self.schema = schema
        self.writer = pq.ParquetWriter(self.path, schema, compression="zstd")
        self.rows = 0

    def write(self, columns: dict[str, list | pa.Array]) -> None:
        if not columns or not len(next(iter(columns.values()))):
            return
        batch = pa.record_batch([_arrow(columns[f.name], f.type) for f in self.schema], schema=self.schema)
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


def _arrow(values, type_: pa.DataType) -> pa.Array:
    if isinstance(values, pa.Array):
        return values
    if pa.types.is_timestamp(type_) and values and isinstance(values[0], int):
        return pa.array(values, pa.int64()).cast(type_)  # microseconds since the epoch (EpochMicros)
    return pa.array(values, type=type_)


def _pages(queryset, fields: tuple, page_rows: int = PAGE_ROWS) -> Iterator[list[tuple]]:
    """Keyset pages of ``(pk, *fields)`` rows, in pk order, with the cyclic GC paused while a page is alive
    (a page is ~50,000 row tuples without cycles; traversing them again and again doubled the time)."""
    last = 0
    while True:
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            page = list(queryset.filter(pk__gt=last).order_by("pk").values_list("pk", *fields)[:page_rows]
                        .iterator(chunk_size=10_000))
            if not page:
                return
            yield page
        finally:
            if gc_was_enabled:
                gc.enable()
        last = page[-1][0]


_NO_FLAGS: list = []


def write_judgments(root: Path, *, project: Project, cutoff_id: int | None, raters: ReleasedRaters) -> dict:
    schema = pa.schema([
        ("judgment_id", pa.int64()), ("submitted_at", UTC_US), ("shown_at", UTC_US), ("rater", pa.string()),
        ("left_item_id", pa.int64()), ("left_item_sha256", pa.string()), ("left_source_model", pa.string()),
        ("right_item_id", pa.int64()), ("right_item_sha256", pa.string()), ("right_source_model", pa.string()),
        ("prompt", pa.string()), ("choice", pa.string()), ("winner_id", pa.int64()), ("loser_id", pa.int64()),
        ("is_tie", pa.bool_()), ("is_repeat", pa.bool_()), ("flags", pa.list_(pa.string())),
        ("instruction_version", pa.int32()), ("response_time_ms", pa.int64()), *raters.fields(),
    ])
    out = _TableWriter(root / "judgments", "judgments", schema)
    # answers to quality checks are not data; excluded raters' answers are left out, as from fits
    qs = (answers_included(Judgment.objects.filter(project=project))
          .annotate(submitted_us=EpochMicros("submitted_at"), shown_us=EpochMicros("shown_at"),
                    flags_text=Cast("flags", output_field=TextField())))
    qs = qs.none() if cutoff_id is None else qs.filter(id__lte=cutoff_id)
    names = ("submitted_at", "shown_at", None, "left_item_id", "left_item_sha256", "left_source_model",
             "right_item_id", "right_item_sha256", "right_source_model", "prompt", "choice", "winner_id",
             "loser_id", "is_tie", "is_repeat", "flags", "instruction_version", "response_time_ms")
    fields = ("submitted_us", "shown_us", "rater_id", "left_item_id", "left_item__sha256",
              "left_item__source_model", "right_item_id", "right_item__sha256", "right_item__source_model",
              "left_item__prompt", "choice", "winner_id", "loser_id", "is_tie", "is_repeat", "flags_text",
              "instruction_version__version", "response_time_ms")
    for page in _pages(qs, fields):
        rows = list(zip(*page))  # transposed in C; the values are shared, not copied
        del page
        columns = {"judgment_id": rows[0], **{name: rows[k + 1] for k, name in enumerate(names) if name}}
        columns["flags"] = [_NO_FLAGS if t is None or t == "[]" else json.loads(t) for t in columns["flags"]]
        columns.update(raters.columns(rows[3]))
        out.write(columns)
        del rows, columns
    return out.close()


def write_rankings(root: Path, *, project: Project, cutoff_id: int | None, raters: ReleasedRaters) -> dict:
    schema = pa.schema([
        ("ranking_id", pa.int64()), ("submitted_at", UTC_US), ("rater", pa.string()),
        ("shown_order", pa.list_(pa.int64())), ("ranking", pa.list_(pa.list_(pa.int64()))),
        ("has_ties", pa.bool_()), ("instruction_version", pa.int32()), ("response_time_ms", pa.int64()),
        *raters.fields(),
    ])
    out = _TableWriter(root / "rankings", "rankings", schema)
    # rounds are not study data; excluded raters' answers are left out
    qs = answers_included(RankAnswer.objects.filter(project=project, task__pool__isnull=True))
    qs = qs.none() if cutoff_id is None else qs.filter(id__lte=cutoff_id)
    fields = ("submitted_at", "rater_id", "shown_order", "ranking", "has_ties", "instruction_version__version",
              "response_time_ms")
    for page in _pages(qs, fields):
        rows = list(zip(*page))
        columns = {"ranking_id": rows[0], "submitted_at": rows[1], "shown_order": rows[3], "ranking": rows[4],
                   "has_ties": rows[5], "instruction_version": rows[6], "response_time_ms": rows[7],
                   **raters.columns(rows[2])}
        out.write(columns)
    return out.close()


POINT = pa.struct([("x", pa.float64()), ("y", pa.float64()), ("kind", pa.string())])


def write_annotations(root: Path, *, project: Project, cutoff_id: int | None, raters: ReleasedRaters) -> dict:
    dims = [d["name"] for d in project.likert_dimensions or []]
    schema = pa.schema([
        ("annotation_id", pa.int64()), ("submitted_at", UTC_US), ("rater", pa.string()), ("item_id", pa.int64()),
        ("kind", pa.string()), ("points", pa.list_(POINT)), ("misaligned_words", pa.list_(pa.int64())),
        *[(f"score_{d}", pa.int8()) for d in dims], ("checklist_answers", pa.string()),
        ("instruction_version", pa.int32()), ("response_time_ms", pa.int64()), *raters.fields(),
    ])
    out = _TableWriter(root / "annotations", "annotations", schema)
    qs = answers_included(Annotation.objects.filter(project=project))
    qs = qs.none() if cutoff_id is None else qs.filter(id__lte=cutoff_id)
    fields = ("submitted_at", "rater_id", "item_id", "kind", "points", "misaligned_words", "scores", "answers",
              "instruction_version__version", "response_time_ms")
    for page in _pages(qs, fields):
        rows = list(zip(*page))
        columns = {
            "annotation_id": rows[0], "submitted_at": rows[1], "item_id": rows[3], "kind": rows[4],
            "points": [[{"x": float(p["x"]), "y": float(p["y"]), "kind": p.get("kind", "artifact")} for p in pts or []]
                       for pts in rows[5]],
            "misaligned_words": [list(w or []) for w in rows[6]],
            "checklist_answers": [json.dumps(a, sort_keys=True) if a else None for a in rows[8]],
            "instruction_version": rows[9], "response_time_ms": rows[10], **raters.columns(rows[2]),
        }
        for d in dims:
            columns[f"score_{d}"] = [(s or {}).get(d) for s in rows[7]]
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


def write_rater_offsets(root: Path, *, project: Project, raters: ReleasedRaters) -> dict:
    """The newest hierarchical fit's per-rater offsets ``u_ri`` (stored only where the rater judged the item;
    zero elsewhere): each rater's personal strength of an item is the population strength plus the offset."""
    fit = (FitRun.objects.filter(project=project, model=FitModel.HBT, status=FitStatus.SUCCEEDED)
           .order_by("-finished_at", "-id").first())
    schema = pa.schema([("fit_id", pa.int64()), ("rater", pa.string()), ("item_id", pa.int64()),
                        ("population_strength", pa.float64()), ("offset", pa.float64())])
    out = _TableWriter(root / "rater_offsets", "rater_offsets", schema)
    if fit is not None:
        strengths = dict(ItemScore.objects.filter(fit=fit).values_list("item_id", "strength"))
        offsets = RaterItemOffset.objects.filter(fit=fit, rater__excluded_at__isnull=True)  # excluded: not released
        for page in _pages(offsets, ("rater_id", "item_id", "offset")):
            rows = list(zip(*page))
            out.write({"fit_id": [fit.pk] * len(page), "rater": raters.columns(rows[1])["rater"],
                       "item_id": rows[2], "population_strength": [strengths.get(i) for i in rows[2]],
                       "offset": rows[3]})
    result = out.close()
    result["fit_id"] = fit.pk if fit else None
    return result


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_grey8(grey: np.ndarray) -> bytes:
    """An 8-bit greyscale PNG of ``grey`` (uint8, height × width).

    Written here rather than through Pillow because a release encodes two maps per image: rows unfiltered
    (filter type 0) and deflated by zlib at its default level, which on heatmaps (flat disks on black)
    took half of Pillow's time for a slightly smaller file (measured on 512×512 release maps; the
    "Sub"/"Up" filters made them larger). Any PNG reader decodes it (tested with Pillow).
    """
    grey = np.ascontiguousarray(grey, dtype=np.uint8)
    height, width = grey.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # column 0: each row's filter type, 0 = none
    rows[:, 1:] = grey
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit greyscale, no interlace
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + _png_chunk(b"IEND", b""))


RICHHF_SCORES = {"artifact_score": "plausibility", "misalignment_score": "alignment", "aesthetics_score": "aesthetics",
                 "overall_score": "overall"}


def _rich_answers_by_item(project: Project, cutoff_id: int) -> Iterator[tuple[int, list]]:
    """``(item_id, [(points, words, scores), …])`` per item, streamed in item order (one item in memory)."""
    rows = (answers_included(Annotation.objects.filter(project=project, kind="rich", id__lte=cutoff_id))
            .order_by("item_id", "id")
            .values_list("item_id", "points", "misaligned_words", "scores").iterator(chunk_size=10_000))
    current, answers = None, []
    for item_id, points, words, scores in rows:
        if item_id != current:
            if answers:
                yield current, answers
            current, answers = item_id, []
        answers.append((points or [], words or [], scores or {}))
    if answers:
        yield current, answers


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
    blank = png_grey8(np.zeros((RICHHF_SIZE, RICHHF_SIZE), dtype=np.uint8))  # most maps of one kind are empty
    items = {pk: (name, prompt) for pk, name, prompt in project.items.values_list("pk", "original_name", "prompt")}

    def heatmap_png(answers: list, kind: str) -> bytes:
        point_sets = [[(p["x"] * RICHHF_SIZE, p["y"] * RICHHF_SIZE) for p in pts if p.get("kind") == kind]
                      for pts, _, _ in answers]
        if not any(point_sets):
            return blank
        counts = coverage_counts(point_sets, RICHHF_SIZE, RICHHF_SIZE, radius)
        return png_grey8(heatmap_8bit(counts, len(point_sets)))

    batch: dict[str, list] = defaultdict(list)
    for item_id, answers in _rich_answers_by_item(project, cutoff_id):
        name, prompt = items[item_id]
        tokens = prompt_tokens(prompt)
        votes = np.zeros((len(answers), len(tokens)), dtype=bool)
        for r, (_, words, _) in enumerate(answers):
            for w in words:
                if 0 <= w < len(tokens):
                    votes[r, w] = True
        misaligned = keyword_majority(votes) if len(tokens) else np.zeros(0, dtype=bool)
        batch["item_id"].append(item_id)
        batch["filename"].append(name)
        batch["prompt"].append(prompt)
        batch["n_raters"].append(len(answers))
        batch["artifact_map"].append(heatmap_png(answers, "artifact"))
        batch["misalignment_map"].append(heatmap_png(answers, "misalignment"))
        batch["prompt_misalignment_label"].append(" ".join("0" if m else "1" for m in misaligned))
        for column, dim in RICHHF_SCORES.items():
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
