"""Import of per-image metric scores (CSV or JSONL), all-or-nothing, and the bulk writer of scores.

A score file has one row per (image, metric)::

    item,metric,value[,version]
    img0001.png,my_aesthetic,5.31

The image is named in one column: ``item`` (an item id, a sha256 or a file name: whichever resolves the
most rows), or explicitly ``item_id``, ``sha256`` or ``file``. ``version`` is optional (without it the
newest version of the metric the project sees is meant). JSONL has the same keys, one object a line.

Every row is checked before anything is written; if any row is bad the import is refused with every
problem listed by line (:class:`ScoresRejected`) and nothing is stored: an unknown image, an ambiguous
file name, a value that is empty, not a number or not finite, a second row for the same (image,
metric), an unknown metric (unless ``create=True``), a metric that is not per-image. An accepted file
becomes one :class:`~ranking.models.MetricRun` (source ``imported``) and its scores, in one
transaction: earlier scores are kept, and the new ones are the newest.

Speed: the file is parsed by pyarrow's CSV/JSON readers into columns, images and metrics are resolved
through dictionaries over the distinct keys, checks are vectorised, and scores are written with
PostgreSQL ``COPY`` (``bulk_create`` batches on SQLite). ``bench/bench_metrics_import.py`` measures it.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.json as pa_json
from django.db import connection, transaction
from django.utils import timezone

from annotator.errors import InvalidInput
from annotator.imports import Upload
from annotator.models import Item, Project
from ranking import selectors
from ranking.models import (
    JobStatus,
    Metric,
    MetricDirection,
    MetricKind,
    MetricRun,
    MetricScore,
    MetricSource,
)
from ranking.services import calibration_reports
from ranking.services import metrics as metric_services

MAX_FILE_BYTES = 1024 * 1024 * 1024
MAX_PROBLEMS = 1000  # problems listed; the count says how many there were in all
ITEM_COLUMNS = ("item", "item_id", "sha256", "file", "file_name")
NUMBER_RE = r"^[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|nan|inf|infinity)$"
COPY_CHUNK_ROWS = 200_000
BULK_BATCH = 5000


class ScoresRejected(InvalidInput):
    """A score file with problems; nothing was stored. ``problems``: ``(line, message)``, by line."""

    code = "import_rejected"

    def __init__(self, problems: list[tuple[int | None, str]], *, total: int | None = None):
        self.problems = problems[:MAX_PROBLEMS]
        self.total = len(problems) if total is None else total
        shown = "; ".join(f"line {line}: {msg}" if line else msg for line, msg in self.problems[:10])
        more = f" (and {self.total - 10} more)" if self.total > 10 else ""
        super().__init__(f"Nothing was imported. {shown}{more}", field="file")

    def as_dict(self) -> dict:
        body = super().as_dict()
        body["error"]["problems"] = [{"line": line, "message": msg} for line, msg in self.problems]
        body["error"]["n_problems"] = self.total
        return body


# ------------------------------------------------------------------------------------------------
# Reading a file into columns
# ------------------------------------------------------------------------------------------------


@dataclass
class ScoreColumns:
    """A score file as columns (one entry per data row, in file order)."""

    format: str  # "csv" or "jsonl"
    item_column: str  # which of ITEM_COLUMNS named the image
    item: pa.Array  # strings, trimmed
    metric: pa.Array  # strings, trimmed
    version: pa.Array | None  # strings, trimmed ("" = not given)
    value: pa.Array  # float64 (JSON numbers) or strings (to be parsed)
    lines: np.ndarray | None  # file line of each row when it is not simply row + offset
    first_line: int  # line of row 0 when ``lines`` is None
    ignored_columns: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.item)

    def line_of(self, rows: np.ndarray) -> np.ndarray:
        return self.lines[rows] if self.lines is not None else rows + self.first_line


def _file_format(name: str, data: bytes) -> str:
    suffix = PurePosixPath(name.lower()).suffix
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".txt"):
        return "csv"
    return "jsonl" if data.lstrip()[:1] == b"{" else "csv"


def _nonblank_lines(data: bytes, *, skip: int = 0) -> np.ndarray:
    """1-based numbers of the non-blank lines after the first ``skip`` lines (what a reader yields rows for)."""
    return np.array([n for n, line in enumerate(data.split(b"\n"), start=1) if n > skip and line.strip()],
                    dtype=np.int64)


def _segments(data: bytes) -> int:
    """Lines in the file, not counting a final newline (no copy of the data)."""
    return data.count(b"\n") + (not data.endswith(b"\n"))


def _trimmed(arr) -> pa.Array:
    arr = arr.combine_chunks() if isinstance(arr, pa.ChunkedArray) else arr
    if not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
        arr = pc.cast(arr, pa.string())
    return pc.utf8_trim_whitespace(pc.fill_null(arr, ""))


def _columns_from_names(names: list[str]) -> tuple[dict[str, str], list[tuple[int | None, str]]]:
    """Map roles (item/metric/value/version) to the file's column names; problems if any is missing."""
    clean = {n.strip().lower(): n for n in names}
    roles: dict[str, str] = {}
    item = next((c for c in ITEM_COLUMNS if c in clean), None)
    problems: list[tuple[int | None, str]] = []
    if item is None:
        problems.append((1, "no image column: name it 'item' (id, sha256 or file name), 'item_id', 'sha256' or "
                            "'file'"))
    else:
        roles["item"] = clean[item]
        roles["item_column"] = item
    for role in ("metric", "value"):
        if role in clean:
            roles[role] = clean[role]
        else:
            problems.append((1, f"no '{role}' column"))
    if "version" in clean:
        roles["version"] = clean["version"]
    return roles, problems


def _table_to_columns(table: pa.Table, *, fmt: str, lines, first_line: int) -> ScoreColumns:
    roles, problems = _columns_from_names(table.column_names)
    if problems:
        raise ScoresRejected(problems)
    used = {roles["item"], roles["metric"], roles["value"], roles.get("version")}
    value = table.column(roles["value"]).combine_chunks()
    if pa.types.is_integer(value.type) or pa.types.is_floating(value.type):
        value = pc.cast(value, pa.float64())
    elif pa.types.is_null(value.type):
        value = pa.array([""] * len(value), pa.string())
    else:
        value = _trimmed(value)
    version = _trimmed(table.column(roles["version"])) if "version" in roles else None
    return ScoreColumns(format=fmt, item_column=roles["item_column"], item=_trimmed(table.column(roles["item"])),
                        metric=_trimmed(table.column(roles["metric"])), version=version, value=value,
                        lines=lines, first_line=first_line,
                        ignored_columns=tuple(n for n in table.column_names if n not in used))


def _read_csv(data: bytes) -> ScoreColumns:
    end = data.find(b"\n")
    first = data if end < 0 else data[:end]
    header = next(csv.reader(io.StringIO(first.decode("utf-8-sig", errors="replace"))), [])
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data),
            convert_options=pa_csv.ConvertOptions(column_types={n: pa.string() for n in header},
                                                  strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return _read_csv_slowly(data)
    blank = _segments(data) != table.num_rows + 1  # the reader skipped blank lines: number rows by hand
    return _table_to_columns(table, fmt="csv", lines=_nonblank_lines(data, skip=1) if blank else None, first_line=2)


def _read_csv_slowly(data: bytes) -> ScoreColumns:
    """The csv module, line by line, for files pyarrow refuses: every malformed line is reported."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScoresRejected([(None, f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})")]) from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        raise ScoresRejected([(1, "the file is empty")])
    _, problems = _columns_from_names(header)
    if problems:
        raise ScoresRejected(problems)
    rows, lines = [], []
    width = len(header)
    for row in reader:
        line = reader.line_num
        if not row or not any(c.strip() for c in row):
            continue
        if len(row) != width:
            problems.append((line, f"expected {width} columns, found {len(row)}"))
            continue
        rows.append(row)
        lines.append(line)
    if problems:
        raise ScoresRejected(problems)
    table = pa.table({name: pa.array([r[i] for r in rows], pa.string()) for i, name in enumerate(header)})
    return _table_to_columns(table, fmt="csv", lines=np.array(lines, dtype=np.int64), first_line=2)


def _read_jsonl(data: bytes) -> ScoreColumns:
    try:
        table = pa_json.read_json(io.BytesIO(data))
        item = table.column(next(c for c in table.column_names if c.strip().lower() in ITEM_COLUMNS))
        ok = not pa.types.is_struct(item.type) and not pa.types.is_list(item.type)
    except (pa.ArrowInvalid, StopIteration):
        ok = False
    if not ok:
        return _read_jsonl_slowly(data)
    blank = _segments(data) != table.num_rows
    return _table_to_columns(table, fmt="jsonl", lines=_nonblank_lines(data) if blank else None, first_line=1)


def _json_text(value) -> str | None:
    """A JSON scalar as the text the value and key checks read (None for objects and lists)."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value).lower()
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    return None


def _read_jsonl_slowly(data: bytes) -> ScoreColumns:
    """Python's json, line by line, for files pyarrow refuses (mixed types, bad lines): all reported."""
    columns: dict[str, list[str]] = defaultdict(list)
    lines: list[int] = []
    problems: list[tuple[int | None, str]] = []
    names: dict[str, None] = {}
    for n, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            problems.append((n, f"not valid JSON ({exc})"[:200]))
            continue
        if not isinstance(obj, dict):
            problems.append((n, "not a JSON object"))
            continue
        row = {}
        for key, value in obj.items():
            text = _json_text(value)
            if text is None:
                problems.append((n, f"'{key}' must be a number or a string"))
                break
            row[key] = text
        else:
            for key in names.keys() | row.keys():
                columns[key].extend([""] * (len(lines) - len(columns[key])))
                columns[key].append(row.get(key, ""))
                names.setdefault(key)
            lines.append(n)
    if problems:
        raise ScoresRejected(problems)
    if not lines:
        raise ScoresRejected([(None, "the file holds no rows")])
    table = pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()})
    return _table_to_columns(table, fmt="jsonl", lines=np.array(lines, dtype=np.int64), first_line=1)


def score_file_read(*, name: str, data: bytes) -> ScoreColumns:
    """Parse a score file into columns; :class:`ScoresRejected` for a file that cannot be read."""
    if not data.strip():
        raise ScoresRejected([(None, "the file is empty")])
    if len(data) > MAX_FILE_BYTES:
        raise ScoresRejected([(None, f"the file is {len(data):,} bytes; the limit is {MAX_FILE_BYTES:,}")])
    columns = _read_jsonl(data) if _file_format(name, data) == "jsonl" else _read_csv(data)
    if len(columns) == 0:
        raise ScoresRejected([(None, "the file holds no rows")])
    return columns


# ------------------------------------------------------------------------------------------------
# Resolving and checking
# ------------------------------------------------------------------------------------------------


@dataclass
class CheckedScores:
    """What an accepted file stores: per row the item id, the metric index and the value."""

    item_ids: np.ndarray
    metric_index: np.ndarray
    values: np.ndarray
    metrics: list[tuple[str, str, Metric | None]]  # (name, version, metric or None: to be created)
    item_column: str


HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")


def _item_maps(project: Project) -> dict[str, dict[str, list[int]]]:
    """Key → item ids for each way a file can name an image (names may be shared by several images)."""
    maps: dict[str, dict[str, list[int]]] = {"id": {}, "sha256": {}, "file": {}}
    for pk, sha, name in Item.objects.filter(project=project).values_list("id", "sha256", "original_name"):
        maps["id"][str(pk)] = [pk]
        maps["sha256"][sha.lower()] = [pk]
        maps["file"].setdefault(name, []).append(pk)
        base = PurePosixPath(name).name
        if base != name:
            maps["file"].setdefault(base, []).append(pk)
    return maps


def _resolve_items(keys: list[str], *, column: str, project: Project) -> tuple[str, list[list[int]]]:
    """Each distinct key's item ids under the interpretation of ``column`` (``item``: whichever resolves most)."""
    maps = _item_maps(project)
    kinds = {"item_id": ["id"], "sha256": ["sha256"], "file": ["file"], "file_name": ["file"]}.get(
        column, ["id", "sha256", "file"])

    def lookup(kind: str, key: str) -> list[int]:
        return maps[kind].get(key.lower() if kind == "sha256" else key, [])

    best = max(kinds, key=lambda kind: (sum(bool(lookup(kind, k)) for k in keys), -kinds.index(kind)))
    return best, [lookup(best, k) for k in keys]


def _metric_keys(columns: ScoreColumns) -> tuple[np.ndarray, list[tuple[str, str]]]:
    """Index of each row's (metric, version) among the distinct pairs, and the pairs."""
    if columns.version is None:
        encoded = pc.dictionary_encode(columns.metric)
        pairs = [(name, "") for name in encoded.dictionary.to_pylist()]
        return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), pairs
    joined = pc.binary_join_element_wise(columns.metric, columns.version, "\x1f")
    encoded = pc.dictionary_encode(joined)
    pairs = [tuple(k.split("\x1f", 1)) for k in encoded.dictionary.to_pylist()]
    return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64), pairs


def scores_check(*, project: Project, columns: ScoreColumns, create: bool = False) -> CheckedScores:
    """Resolve images and metrics and check every row; :class:`ScoresRejected` lists every problem by line."""
    n = len(columns)
    problems: dict[str, np.ndarray] = {}  # message kind → bool mask over rows
    messages: dict[str, object] = {}

    # values
    if pa.types.is_floating(columns.value.type):  # JSON numbers; null where a row has no value
        empty = columns.value.is_null().to_numpy(zero_copy_only=False)
        values = pc.fill_null(columns.value, float("nan")).to_numpy(zero_copy_only=False)
        not_number = np.zeros(n, dtype=bool)
    else:
        value_text = columns.value
        empty = pc.equal(value_text, "").to_numpy(zero_copy_only=False)
        looks = pc.match_substring_regex(value_text, NUMBER_RE, ignore_case=True).to_numpy(zero_copy_only=False)
        not_number = ~looks & ~empty
        values = pc.cast(pc.if_else(pa.array(looks), value_text, "nan"), pa.float64()).to_numpy(zero_copy_only=False)
    not_finite = ~np.isfinite(values) & ~empty & ~not_number
    problems["empty"], problems["not_number"], problems["not_finite"] = empty, not_number, not_finite

    # images
    encoded = pc.dictionary_encode(columns.item)
    keys = encoded.dictionary.to_pylist()
    key_index = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    kind, resolved = _resolve_items(keys, column=columns.item_column, project=project)
    key_item = np.array([ids[0] if len(ids) == 1 else -len(ids) for ids in resolved], dtype=np.int64)
    item_ids = key_item[key_index] if n else np.empty(0, dtype=np.int64)
    problems["no_item"] = (item_ids == 0) & pc.not_equal(columns.item, "").to_numpy(zero_copy_only=False)
    problems["item_empty"] = pc.equal(columns.item, "").to_numpy(zero_copy_only=False)
    problems["ambiguous"] = item_ids < 0
    messages["item_kind"] = {"id": "item id", "sha256": "sha256", "file": "file name"}[kind]

    # metrics
    metric_index, pairs = _metric_keys(columns)
    found: list[tuple[str, str, Metric | None]] = []
    bad_metric = np.zeros(len(pairs), dtype=bool)
    metric_reason: dict[int, str] = {}
    for j, (name, version) in enumerate(pairs):
        metric = selectors.metric_lookup(project=project, name=name, version=version or None) if name else None
        if not name:
            bad_metric[j], metric_reason[j] = True, "metric is empty"
        elif metric is None and not create:
            bad_metric[j] = True
            metric_reason[j] = (f"unknown metric '{name}'" + (f" version '{version}'" if version else "")
                                + " (import with create to add it)")
        elif metric is not None and metric.kind != MetricKind.ITEM:
            bad_metric[j], metric_reason[j] = True, f"metric '{name}' is {metric.kind}-level, not per image"
        found.append((name, version or (metric.version if metric else "1"), metric))
    problems["metric"] = bad_metric[metric_index] if n else np.zeros(0, dtype=bool)

    # duplicates (among rows whose image and metric are known)
    known = (item_ids > 0) & ~problems["metric"]
    key = np.where(known, item_ids * max(len(pairs), 1) + metric_index, -1 - np.arange(n))
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    same = np.zeros(n, dtype=bool)
    same[1:] = sorted_key[1:] == sorted_key[:-1]
    duplicate = np.zeros(n, dtype=bool)
    duplicate[order[same]] = True
    first_of = np.empty(n, dtype=np.int64)  # for each sorted position, the first row of its run
    starts = np.flatnonzero(~same)
    first_of[order] = order[starts[np.searchsorted(starts, np.arange(n), side="right") - 1]]
    problems["duplicate"] = duplicate

    bad = np.zeros(n, dtype=bool)
    for mask in problems.values():
        bad |= mask
    if bad.any():
        rows = np.flatnonzero(bad)
        lines = columns.line_of(rows[:MAX_PROBLEMS])
        listed = []
        for row, line in zip(rows[:MAX_PROBLEMS].tolist(), lines.tolist()):
            listed.extend((line, msg) for msg in _row_messages(row, problems, columns, keys, key_index, messages,
                                                               metric_index, metric_reason, first_of))
        raise ScoresRejected(listed, total=int(sum(int(m.sum()) for m in problems.values())))
    return CheckedScores(item_ids=item_ids, metric_index=metric_index, values=values, metrics=found,
                         item_column=kind)


def _row_messages(row, problems, columns, keys, key_index, messages, metric_index, metric_reason, first_of):
    item = keys[key_index[row]]
    value = columns.value[row].as_py()
    if problems["item_empty"][row]:
        yield "the image column is empty"
    if problems["no_item"][row]:
        yield f"unknown image: no {messages['item_kind']} '{item}' in this project"
    if problems["ambiguous"][row]:
        yield f"file name '{item}' matches several images; name them by id or sha256"
    if problems["empty"][row]:
        yield "value is empty"
    if problems["not_number"][row]:
        yield f"value '{value}' is not a number"
    if problems["not_finite"][row]:
        yield f"value '{value}' is not finite"
    if problems["metric"][row]:
        yield metric_reason[int(metric_index[row])]
    if problems["duplicate"][row]:
        first = int(columns.line_of(np.array([first_of[row]]))[0])
        yield f"duplicate row: line {first} already scores image '{item}' on this metric"


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------


def scores_write(*, run: MetricRun, metric_ids: np.ndarray, item_ids: np.ndarray, values: np.ndarray) -> int:
    """Store one run's scores (inside the caller's transaction): COPY on PostgreSQL, bulk_create elsewhere."""
    n = len(item_ids)
    if n == 0:
        return 0
    now = timezone.now()
    metric_ids = np.asarray(metric_ids, dtype=np.int64)
    item_ids = np.asarray(item_ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if connection.vendor == "postgresql":
        # In index order: the unique (metric, item, run) index and the foreign-key checks then walk
        # their b-trees in order instead of at random.
        order = np.lexsort((item_ids, metric_ids))
        table = pa.table({"metric_id": metric_ids[order], "item_id": item_ids[order], "value": values[order]})
        sql = (f"COPY {MetricScore._meta.db_table} (run_id, created_at, metric_id, item_id, value) "
               "FROM STDIN WITH (FORMAT csv)")
        options = pa_csv.WriteOptions(include_header=False)
        constant = f"{run.pk},{now.isoformat()},".encode()
        with connection.cursor() as cursor, cursor.copy(sql) as copy:
            for start in range(0, n, COPY_CHUNK_ROWS):
                sink = pa.BufferOutputStream()
                pa_csv.write_csv(table.slice(start, COPY_CHUNK_ROWS), sink, write_options=options)
                lines = sink.getvalue().to_pybytes()
                copy.write(constant + lines[:-1].replace(b"\n", b"\n" + constant) + b"\n")
        return n
    for start in range(0, n, BULK_BATCH):
        stop = min(start + BULK_BATCH, n)
        MetricScore.objects.bulk_create([
            MetricScore(run_id=run.pk, metric_id=int(m), item_id=int(i), value=float(v), created_at=now)
            for m, i, v in zip(metric_ids[start:stop].tolist(), item_ids[start:stop].tolist(),
                               values[start:stop].tolist())
        ])
    return n


def _read_upload(upload: Upload) -> bytes:
    if upload.size is not None and upload.size > MAX_FILE_BYTES:
        raise ScoresRejected([(None, f"the file is {upload.size:,} bytes; the limit is {MAX_FILE_BYTES:,}")])
    if hasattr(upload.stream, "seek"):
        upload.stream.seek(0)
    return upload.stream.read(MAX_FILE_BYTES + 1)


def metric_scores_import(*, project: Project, upload: Upload, create: bool = False,
                         direction: str = MetricDirection.HIGHER, dimension: str = "", user=None) -> MetricRun:
    """Import a score file as one run, all or nothing (see the module docstring).

    ``create``: metrics not known to the project are created (a built-in plugin's metric when the name
    and version match one; otherwise a project metric with ``direction`` and ``dimension``).
    Returns the succeeded :class:`MetricRun`; raises :class:`ScoresRejected` (nothing stored).
    """
    if direction not in MetricDirection.values:
        raise InvalidInput(f"direction must be one of {', '.join(MetricDirection.values)}.", field="direction")
    started = timezone.now()
    columns = score_file_read(name=upload.name, data=_read_upload(upload))
    checked = scores_check(project=project, columns=columns, create=create)
    with transaction.atomic():
        metrics: list[Metric] = []
        for name, version, metric in checked.metrics:
            if metric is None:
                metric = metric_services.metric_create_imported(
                    project=project, name=name, version=version, direction=direction, dimension=dimension,
                    file_name=upload.name)
            metrics.append(metric)
        metric_ids = np.array([m.pk for m in metrics], dtype=np.int64)
        per_metric = np.bincount(checked.metric_index, minlength=len(metrics))
        run = MetricRun.objects.create(
            project=project, source=MetricSource.IMPORTED, file_name=upload.name[:300], requested_by=user,
            params={"create": create, "format": columns.format, "item_column": checked.item_column},
            status=JobStatus.SUCCEEDED, progress=1.0, started_at=started, published_at=None,
            counts={"rows": len(columns), "items": int(np.unique(checked.item_ids).size),
                    "metrics": {f"{m.name} v{m.version}": int(c) for m, c in zip(metrics, per_metric)},
                    "created_metrics": [f"{name} v{version}" for name, version, m in checked.metrics if m is None],
                    "ignored_columns": list(columns.ignored_columns)},
        )
        run.metrics.set(metrics)
        scores_write(run=run, metric_ids=metric_ids[checked.metric_index], item_ids=checked.item_ids,
                     values=checked.values)
        MetricRun.objects.filter(pk=run.pk).update(finished_at=timezone.now())
        calibration_reports.calibration_report_after_new_data(project_id=project.pk)
    run.refresh_from_db()
    return run
