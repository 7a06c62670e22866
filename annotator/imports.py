"""Image import: single files, ZIP archives and CSV/JSONL manifests, all-or-nothing.

Every file is checked before anything is stored: the archive for path traversal,
links and decompression bombs; each image with Pillow against a format allow-list,
a byte limit and a pixel limit, and decoded in full so that truncated or corrupt
files are caught. If any file is bad, the upload is refused with every problem
listed by file name and no item is created.

Memory is bounded: archive members are read in chunks and refused as soon as one
passes the image byte limit (``MAX_FILE_BYTES``) or the whole upload passes its
uncompressed budget (``MAX_UPLOAD_UNCOMPRESSED_BYTES``) — by the sizes the archive
declares before reading, and by the bytes that actually come out while reading.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import posixpath
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from PIL import Image, UnidentifiedImageError

from annotator.errors import DomainError, InvalidInput
from annotator.feedback import normalise_prompt
from annotator.models import Item, Project
from annotator.services.items import MAX_PROMPT_CHARS, item_changes_clean

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")
MANIFEST_NAMES = ("manifest.csv", "manifest.jsonl")
#: Used when the settings' PREFLAB_UPLOAD does not name MAX_UPLOAD_UNCOMPRESSED_BYTES.
DEFAULT_MAX_UPLOAD_UNCOMPRESSED_BYTES = 512 * 1024 * 1024


class UploadRejected(InvalidInput):
    """An upload with one or more bad files. ``problems`` maps file name to reason."""

    code = "upload_rejected"

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        shown = "; ".join(f"{name}: {reason}" for name, reason in problems[:20])
        more = f" (and {len(problems) - 20} more)" if len(problems) > 20 else ""
        super().__init__(f"Nothing was imported. {shown}{more}", field="files")

    def as_dict(self) -> dict:
        body = super().as_dict()
        body["error"]["problems"] = [{"file": n, "reason": r} for n, r in self.problems]
        return body


@dataclass
class Upload:
    """A file as received: its name and a readable binary stream."""

    name: str
    stream: BinaryIO
    size: int


@dataclass
class _Candidate:
    name: str
    data: bytes
    image_format: str = ""
    width: int = 0
    height: int = 0
    sha256: str = ""
    prompt: str = ""
    source_model: str = ""
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ImportReport:
    created: list[str]
    already_present: list[str]
    updated: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"created": len(self.created), "already_present": self.already_present, "files": self.created,
                "updated": self.updated}


def _limits() -> dict:
    return settings.PREFLAB_UPLOAD


def image_inspect(name: str, data: bytes) -> tuple[str, int, int]:
    """Return ``(format, width, height)`` of a valid image, or raise ValueError with the reason."""
    limits = _limits()
    if len(data) > limits["MAX_FILE_BYTES"]:
        raise ValueError(f"file is {len(data):,} bytes; the limit is {limits['MAX_FILE_BYTES']:,}")
    if not data:
        raise ValueError("file is empty")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or ""
            width, height = img.size
            if fmt not in limits["FORMATS"]:
                raise ValueError(f"format {fmt or 'unknown'} is not accepted (use {', '.join(limits['FORMATS'])})")
            if width * height > limits["MAX_PIXELS"]:
                raise ValueError(
                    f"image is {width}×{height} = {width * height:,} pixels; the limit is {limits['MAX_PIXELS']:,}"
                )
            img.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.load()
    except UnidentifiedImageError:
        raise ValueError("not an image Pillow can read") from None
    except Image.DecompressionBombError:
        raise ValueError("image exceeds the pixel limit (decompression bomb guard)") from None
    except (OSError, SyntaxError, struct.error) as exc:
        raise ValueError(f"corrupt or truncated image ({exc.__class__.__name__})") from None
    return fmt, width, height


def _safe_member_name(name: str) -> str | None:
    """The normalised member path, or None when it could escape the archive."""
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    norm = posixpath.normpath(name)
    if norm.startswith("..") or "/../" in f"/{norm}/" or norm in (".", ""):
        return None
    return norm


#: Members are read in chunks of this many bytes, counting as they come.
_CHUNK = 1024 * 1024


class _TooLarge(ValueError):
    """More bytes came out of an archive member than were allowed."""


class _Budget:
    """The uncompressed bytes one upload may still bring in (``MAX_UPLOAD_UNCOMPRESSED_BYTES``)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.used = 0

    @property
    def left(self) -> int:
        return self.limit - self.used

    def refusal(self) -> str:
        return (f"the upload expands to more than {self.limit:,} bytes uncompressed (the limit per upload); "
                "split it into smaller uploads")


def _read_member(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limit: int) -> bytes:
    """The member's bytes, read in chunks; ValueError as soon as more than ``limit`` bytes come out or the
    data does not match the archive's directory (size or CRC)."""
    chunks: list[bytes] = []
    read = 0
    try:
        with archive.open(member) as fh:
            while chunk := fh.read(min(_CHUNK, limit + 1 - read)):
                read += len(chunk)
                if read > limit:
                    raise _TooLarge(f"expands past {limit:,} bytes")
                chunks.append(chunk)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError) as exc:
        raise ValueError(f"corrupt or unreadable archive member ({exc.__class__.__name__})") from None
    if read != member.file_size:
        raise ValueError("size does not match the archive directory")
    return b"".join(chunks)


def _read_zip(upload: Upload, problems: list[tuple[str, str]], budget: _Budget) -> dict[str, bytes]:
    """The archive's files by safe path. Sizes are checked before reading (the directory's) and while
    reading (the bytes that come out): no member beyond the image byte limit, nor the upload beyond its
    uncompressed budget, is ever held in memory."""
    limits = _limits()
    out: dict[str, bytes] = {}
    try:
        archive = zipfile.ZipFile(upload.stream)
    except (zipfile.BadZipFile, OSError):
        problems.append((upload.name, "not a valid ZIP archive"))
        return out
    with archive:
        members = archive.infolist()
        if len(members) > limits["MAX_ARCHIVE_MEMBERS"]:
            problems.append((upload.name, f"has {len(members):,} entries; the limit is {limits['MAX_ARCHIVE_MEMBERS']:,}"))
            return out
        declared = sum(m.file_size for m in members)
        if declared > limits["MAX_ARCHIVE_BYTES"]:
            problems.append((upload.name, f"expands to {declared:,} bytes; the limit is {limits['MAX_ARCHIVE_BYTES']:,}"))
            return out
        if declared > budget.left:
            problems.append((upload.name, f"expands to {declared:,} bytes: {budget.refusal()}"))
            return out
        member_limit = limits["MAX_FILE_BYTES"]
        for member in members:
            label = f"{upload.name}:{member.filename}"
            safe = _safe_member_name(member.filename)
            if safe is None:
                problems.append((label, "unsafe path in archive (absolute or '..')"))
                continue
            if member.is_dir():
                continue
            mode = member.external_attr >> 16
            if stat.S_ISLNK(mode):
                problems.append((label, "symbolic links are not accepted"))
                continue
            base = posixpath.basename(safe)
            if base.startswith(".") or safe.startswith("__MACOSX/"):
                continue
            if member.file_size > member_limit:
                problems.append((label, f"expands to {member.file_size:,} bytes; the limit per file is {member_limit:,}"))
                continue
            if member.compress_size and member.file_size / member.compress_size > limits["MAX_COMPRESSION_RATIO"]:
                problems.append((label, "suspicious compression ratio (possible zip bomb)"))
                continue
            try:
                data = _read_member(archive, member, min(member_limit, budget.left))
            except _TooLarge as exc:
                if budget.left < member_limit:  # the upload's budget ran out: stop reading this archive
                    problems.append((label, budget.refusal()))
                    return out
                problems.append((label, str(exc)))
                continue
            except ValueError as exc:
                problems.append((label, str(exc)))
                continue
            budget.used += len(data)
            out[safe] = data
    return out


#: Manifest columns that describe an image (``model`` and ``source_model`` both name the model).
_DESCRIBING = {"prompt": "prompt", "model": "source_model", "source_model": "source_model", "metadata": "metadata"}


def _parse_manifest(name: str, data: bytes) -> list[dict]:
    """The manifest's entries: dicts with ``file``, the describing fields present, ``_line`` (its line)
    and ``_fields`` (which of prompt, source_model, metadata the entry gives)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError("manifest must be UTF-8 text") from None
    rows: list[dict] = []
    if name.lower().endswith(".jsonl"):
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"line {number} is not valid JSON ({exc.msg})") from None
            if not isinstance(row, dict):
                raise ValueError(f"line {number} must be a JSON object")
            row["_fields"] = {_DESCRIBING[k] for k in row if k in _DESCRIBING}
            row["_line"] = number
            rows.append(row)
    else:
        reader = csv.DictReader(io.StringIO(text))
        if not reader.fieldnames or "file" not in reader.fieldnames:
            raise ValueError("a CSV manifest needs a header row with a 'file' column")
        extra_columns = [k for k in reader.fieldnames if k and k not in ("file", "sha256", *_DESCRIBING)]
        fields = {_DESCRIBING[k] for k in reader.fieldnames if k in _DESCRIBING}
        if extra_columns:
            fields.add("metadata")
        for row in reader:
            extra = {k: v for k, v in row.items() if k in extra_columns}
            metadata = row.get("metadata") or ""
            try:
                parsed = json.loads(metadata) if metadata.strip() else {}
            except json.JSONDecodeError:
                raise ValueError(f"line {reader.line_num}, row for {row.get('file')!r}: metadata is not valid "
                                 "JSON") from None
            if not isinstance(parsed, dict):
                raise ValueError(f"line {reader.line_num}, row for {row.get('file')!r}: metadata must be a JSON "
                                 "object")
            rows.append({**row, "metadata": {**extra, **parsed}, "_fields": set(fields), "_line": reader.line_num})
    for number, row in enumerate(rows, start=1):
        where = f"line {row['_line']}" if "_line" in row else f"entry {number}"
        if not isinstance(row.get("file"), str) or not row["file"].strip():
            raise ValueError(f"{where} has no 'file'")
        if len(str(row.get("prompt") or "")) > MAX_PROMPT_CHARS:
            raise ValueError(f"{where}: prompt is longer than {MAX_PROMPT_CHARS} characters")
        if not isinstance(row.get("metadata", {}), dict):
            raise ValueError(f"{where}: metadata must be an object")
    return rows


def _description(row: dict) -> dict:
    """The describing fields a manifest entry gives, as keyword arguments of ``item_changes_clean``."""
    given = {}
    if "prompt" in row["_fields"]:
        given["prompt"] = normalise_prompt(str(row.get("prompt") or ""))
    if "source_model" in row["_fields"]:
        given["source_model"] = str(row.get("model") or row.get("source_model") or "")
    if "metadata" in row["_fields"]:
        given["metadata"] = row.get("metadata") or {}
    return given


class _ProjectItems:
    """The project's images by sha256 and by file name, for manifest rows describing earlier uploads."""

    def __init__(self, project: Project):
        self.by_sha: dict[str, Item] = {}
        self.by_name: dict[str, list[Item]] = {}
        self._project = project
        self._loaded = False

    def _load(self) -> None:
        if self._loaded:
            return
        for item in Item.objects.filter(project=self._project).order_by("id"):
            self.by_sha[item.sha256] = item
            self.by_name.setdefault(item.original_name, []).append(item)
            base = posixpath.basename(item.original_name)
            if base != item.original_name:
                self.by_name.setdefault(base, []).append(item)
        self._loaded = True

    def find(self, ref: str, sha256: str = "") -> tuple[Item | None, str]:
        """The item a manifest row names (by sha256, else by file name), or None and the reason."""
        self._load()
        sha = (sha256 or "").strip().lower()
        if not sha and len(ref) == 64 and all(c in "0123456789abcdef" for c in ref.lower()):
            sha = ref.lower()
        if sha:
            item = self.by_sha.get(sha)
            return (item, "") if item else (None, f"no image of this project has the sha256 {sha}")
        matches = self.by_name.get(ref) or self.by_name.get(posixpath.basename(ref)) or []
        if len(matches) == 1:
            return matches[0], ""
        if len(matches) > 1:
            return None, f"{len(matches)} images of this project are named '{ref}'; name it by its sha256"
        return None, "listed in the manifest but not uploaded, and no image of this project has this file name"


def items_import(*, project: Project, uploads: list[Upload], manifest: Upload | None = None) -> ImportReport:
    """Validate every upload, then create all items (and apply the manifest to images uploaded earlier) in
    one transaction, or nothing."""
    if not uploads and manifest is None:
        raise InvalidInput("No files were uploaded.", field="files")
    problems: list[tuple[str, str]] = []
    files: dict[str, bytes] = {}
    manifest_rows: list[dict] | None = None
    manifest_source = manifest
    budget = _Budget(_limits().get("MAX_UPLOAD_UNCOMPRESSED_BYTES", DEFAULT_MAX_UPLOAD_UNCOMPRESSED_BYTES))
    for upload in uploads:
        lower = upload.name.lower()
        if lower.endswith(".zip"):
            for member, data in _read_zip(upload, problems, budget).items():
                if posixpath.basename(member).lower() in MANIFEST_NAMES and manifest_source is None:
                    manifest_source = Upload(name=member, stream=io.BytesIO(data), size=len(data))
                    continue
                files[member] = data
        elif lower.endswith(MANIFEST_NAMES) and manifest_source is None:
            manifest_source = upload
        else:
            if upload.size > _limits()["MAX_FILE_BYTES"]:
                problems.append((upload.name, f"file is {upload.size:,} bytes; the limit is {_limits()['MAX_FILE_BYTES']:,}"))
                continue
            if upload.size > budget.left:
                problems.append((upload.name, budget.refusal()))
                continue
            data = upload.stream.read(_limits()["MAX_FILE_BYTES"] + 1)
            budget.used += len(data)
            files[posixpath.basename(upload.name)] = data
    if manifest_source is not None:
        try:
            manifest_data = manifest_source.stream.read(_limits()["MAX_FILE_BYTES"] + 1)
            if len(manifest_data) > _limits()["MAX_FILE_BYTES"]:
                raise ValueError(f"manifest is larger than {_limits()['MAX_FILE_BYTES']:,} bytes")
            manifest_rows = _parse_manifest(manifest_source.name, manifest_data)
        except ValueError as exc:
            problems.append((manifest_source.name, str(exc)))

    candidates: dict[str, _Candidate] = {}
    for name, data in files.items():
        if not name.lower().endswith(IMAGE_SUFFIXES):
            problems.append((name, "not an image file name (expected .png, .jpg, .jpeg, .webp or .gif)"))
            continue
        try:
            fmt, width, height = image_inspect(name, data)
        except ValueError as exc:
            problems.append((name, str(exc)))
            continue
        candidates[name] = _Candidate(
            name=name, data=data, image_format=fmt, width=width, height=height,
            sha256=hashlib.sha256(data).hexdigest(),
        )

    described: dict[str, dict] = {}  # candidate name -> the describing fields of its manifest row
    earlier: list[tuple[Item, dict, str]] = []  # images uploaded before, with the row's fields and label
    if manifest_rows is not None:
        by_base: dict[str, list[str]] = {}
        for name in files:
            by_base.setdefault(posixpath.basename(name), []).append(name)
        listed: set[str] = set()
        project_items = _ProjectItems(project)
        earlier_ids: dict[int, int] = {}
        for row in manifest_rows:
            ref = row["file"].strip()
            label = f"{manifest_source.name} line {row['_line']}: {ref}"
            key = ref if ref in files else None
            if key is None and len(by_base.get(posixpath.basename(ref), [])) == 1:
                key = by_base[posixpath.basename(ref)][0]
            if key is None:
                item, reason = project_items.find(ref, str(row.get("sha256") or ""))
                if item is None:
                    problems.append((ref, f"{reason} ({manifest_source.name} line {row['_line']})"))
                elif item.pk in earlier_ids:
                    problems.append((label, f"describes the same image as line {earlier_ids[item.pk]}"))
                else:
                    earlier_ids[item.pk] = row["_line"]
                    earlier.append((item, _description(row), label))
                continue
            if key in listed:
                problems.append((label, "the file is listed twice in the manifest"))
                continue
            listed.add(key)
            if key in candidates:
                cand = candidates[key]
                cand.prompt = normalise_prompt(str(row.get("prompt") or ""))
                cand.source_model = str(row.get("model") or row.get("source_model") or "")[:200]
                cand.metadata = row.get("metadata") or {}
                described[key] = _description(row)
        for name in files:
            if name not in listed:
                problems.append((name, "uploaded but not listed in the manifest"))

    seen: dict[str, str] = {}
    for cand in candidates.values():
        if cand.sha256 in seen:
            problems.append((cand.name, f"same image as {seen[cand.sha256]}"))
        seen.setdefault(cand.sha256, cand.name)
    existing = {item.sha256: item for item in Item.objects.filter(project=project, sha256__in=list(seen))}
    # A re-uploaded image that the manifest describes is updated like an image named by the manifest alone.
    for cand in candidates.values():
        if cand.sha256 in existing and cand.name in described:
            earlier.append((existing[cand.sha256], described[cand.name], cand.name))
    changes_of: list[tuple[Item, dict]] = []
    for item, given, label in earlier:
        try:
            changes = item_changes_clean(item=item, **given)
        except DomainError as exc:
            problems.append((label, exc.message))
            continue
        if changes:
            changes_of.append((item, changes))
    if problems:
        raise UploadRejected(problems)

    created: list[str] = []
    present: list[str] = []
    updated: list[str] = []
    stored_paths: list[str] = []
    try:
        with transaction.atomic():
            for item, changes in changes_of:
                Item.objects.filter(pk=item.pk).update(**changes)
                updated.append(item.original_name)
            for cand in sorted(candidates.values(), key=lambda c: c.name):
                if cand.sha256 in existing:
                    present.append(cand.name)
                    continue
                item = Item(
                    project=project, original_name=cand.name[:300], prompt=cand.prompt,
                    source_model=cand.source_model, metadata=cand.metadata, width=cand.width,
                    height=cand.height, image_format=cand.image_format, sha256=cand.sha256,
                )
                item.image.save(f"{cand.sha256}{item.extension}", ContentFile(cand.data), save=False)
                stored_paths.append(item.image.name)
                item.save()
                created.append(cand.name)
    except Exception:
        from django.core.files.storage import default_storage

        for path in stored_paths:
            default_storage.delete(path)
        raise
    return ImportReport(created=created, already_present=present, updated=updated)
