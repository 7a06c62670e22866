"""Dataset export: a project's pairwise judgments as Parquet or CSV, streamed.

One row per judgment, in id order, with everything needed to reuse the data without the
database: who judged (the rater's pseudonymous public id and self-reported demographics —
never crowd-platform ids), what they saw (both items with their sha256 and original file name,
in screen order), what they were told (instruction version number), what they chose (``choice``
as pressed, plus ``winner_id`` / ``loser_id`` / ``is_tie`` in terms of items), and when.

Memory stays bounded whatever the project size: rows are read in keyset pages
(``id > last_id ORDER BY id LIMIT page``, never OFFSET), each page through a streaming
cursor (``values_list(...).iterator(chunk_size=...)``) with every related field joined into
the same query (no N+1), turned into one Arrow RecordBatch, written, and dropped. Parquet
writes one row group per page (zstd); CSV is written by Arrow's CSV writer from the same batches.

Incremental exports: ``since_id`` keeps judgments with ``id > since_id``; the returned
:class:`ExportReport` gives ``last_id`` to pass next time (judgments are append-only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO, Literal

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from django.db.models import TextField
from django.db.models.functions import Cast

from annotator.errors import InvalidInput
from annotator.models import Judgment, Project

ExportFormat = Literal["parquet", "csv"]
FORMATS: tuple[str, ...] = ("parquet", "csv")
CONTENT_TYPES = {"parquet": "application/vnd.apache.parquet", "csv": "text/csv; charset=utf-8"}

_UTC_US = pa.timestamp("us", tz="UTC")

#: (column name, ORM lookup, Arrow type). The order is the file's column order.
COLUMNS: tuple[tuple[str, str, pa.DataType], ...] = (
    ("judgment_id", "id", pa.int64()),
    ("submitted_at", "submitted_at", _UTC_US),
    ("shown_at", "shown_at", _UTC_US),
    ("rater", "rater__public_id", pa.string()),
    ("task_id", "task_id", pa.int64()),
    ("left_item_id", "left_item_id", pa.int64()),
    ("left_item_sha256", "left_item__sha256", pa.string()),
    ("left_item_name", "left_item__original_name", pa.string()),
    ("right_item_id", "right_item_id", pa.int64()),
    ("right_item_sha256", "right_item__sha256", pa.string()),
    ("right_item_name", "right_item__original_name", pa.string()),
    ("choice", "choice", pa.string()),
    ("winner_id", "winner_id", pa.int64()),
    ("loser_id", "loser_id", pa.int64()),
    ("is_tie", "is_tie", pa.bool_()),
    ("instruction_version", "instruction_version__version", pa.int32()),
    ("response_time_ms", "response_time_ms", pa.int64()),
    ("flags", "flags_json", pa.string()),  # JSON text, e.g. ["both bad"]
    ("rater_country", "rater__demographics__country", pa.string()),
    ("rater_languages", "rater__demographics__languages", pa.string()),
    ("rater_age_band", "rater__demographics__age_band", pa.string()),
    ("rater_gender", "rater__demographics__gender", pa.string()),
    ("rater_expertise", "rater__demographics__expertise", pa.string()),
    ("rater_colour_vision", "rater__demographics__colour_vision", pa.string()),
    ("rater_device", "rater__demographics__device", pa.string()),
)

SCHEMA = pa.schema(
    [pa.field(name, type_, nullable=True) for name, _, type_ in COLUMNS],
    metadata={
        b"preflab.content": b"pairwise judgments",
        b"preflab.note": b"timestamps are UTC; winner/loser are item ids (null on ties); "
                         b"flags is JSON text; rater_* demographics are self-reported, '' = not answered, "
                         b"null = no demographics form",
    },
)

#: Rows per keyset page = per RecordBatch = per Parquet row group.
PAGE_ROWS = 50_000
#: Rows fetched per round trip of the streaming cursor inside a page.
FETCH_ROWS = 5_000


@dataclass(frozen=True)
class ExportReport:
    n_rows: int
    last_id: int | None  # the largest judgment id written; pass as since_id for the next increment


def judgments_export(
    *,
    project: Project,
    fmt: ExportFormat,
    out: BinaryIO,
    since_id: int | None = None,
    page_rows: int = PAGE_ROWS,
) -> ExportReport:
    """Write the project's judgments (``id > since_id`` if given) to ``out`` as Parquet or CSV.

    ``out`` is a binary file object; it is written sequentially and not closed.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}.", field="format")
    if page_rows < 1:
        raise InvalidInput("page_rows must be positive.", field="page_rows")
    if fmt == "parquet":
        writer = pq.ParquetWriter(out, SCHEMA, compression="zstd", compression_level=1)
    else:
        writer = pa_csv.CSVWriter(out, SCHEMA)
    n_rows, last_id = 0, None
    try:
        for batch in _record_batches(project=project, since_id=since_id, page_rows=page_rows):
            writer.write_batch(batch)
            n_rows += batch.num_rows
            last_id = batch.column(0)[-1].as_py()
    finally:
        writer.close()
    return ExportReport(n_rows=n_rows, last_id=last_id)


def _record_batches(*, project: Project, since_id: int | None, page_rows: int):
    """Yield one RecordBatch per keyset page of at most ``page_rows`` judgments, in id order."""
    base = (
        Judgment.objects.filter(project=project)
        .annotate(flags_json=Cast("flags", output_field=TextField()))
        .order_by("id")
        .values_list(*(lookup for _, lookup, _ in COLUMNS))
    )
    last_id = since_id
    while True:
        page = base if last_id is None else base.filter(id__gt=last_id)
        rows = list(page[:page_rows].iterator(chunk_size=FETCH_ROWS))
        if not rows:
            return
        last_id = rows[-1][0]
        n_rows = len(rows)
        columns = list(zip(*rows))  # transposed in C; the values themselves are shared, not copied
        del rows
        yield pa.RecordBatch.from_arrays(
            [pa.array(values, type=type_) for values, (_, _, type_) in zip(columns, COLUMNS)], schema=SCHEMA
        )
        del columns
        if n_rows < page_rows:
            return
