"""Writes for dataset releases: one export of a project a research team can publish.

:func:`release_request` records what the researcher asked for (images or not, the smallest demographic
cell ``k``, free text or not, the licence) with a fresh salt; the job (:func:`release_execute`, through
:func:`ranking.jobs.job_run`) fixes the cut-offs, writes the folder (:mod:`ranking.release_files`: Parquet
tables streamed page by page, RichHF-18K-style records, the images if asked, the dataset card) under
``MEDIA_ROOT/releases/<project>/<id>/`` and its zip beside it, and stores the manifest. A release is never
rewritten: a new one is a new row with its own salt and folder. :func:`release_write` is the same writing
for the command line (``dataset_release <slug> --out DIR``).
"""

from __future__ import annotations

import secrets
import shutil
import zipfile
from pathlib import Path

import yaml
from django.conf import settings
from django.template.loader import render_to_string
from django.utils import timezone

from annotator.errors import InvalidInput
from annotator.models import Annotation, Judgment, Project, RankAnswer
from ranking import jobs, loaders, release_files, selectors
from ranking.loaders import answers_included
from ranking.models import DatasetRelease

KIND = jobs.job_kind_register(name="dataset_release", model=DatasetRelease,
                              task_name="ranking.dataset_release_execute")
DEFAULT_K = 5
TABLES = ("judgments", "rankings", "annotations", "items", "fits", "rater_offsets", "richhf")
CONFIG_DESCRIPTIONS = {
    "judgments": "pairwise judgments: the two images in screen order, the choice, ties, the rater's pseudonym "
                 "and released demographics, the instruction version, response time",
    "rankings": "rank answers: the images as shown and the rater's order, best first (ties grouped)",
    "annotations": "rich feedback and checklist answers: every rater's raw points (x, y as fractions of the "
                   "image), misaligned word indices, 1-5 scores, checklist answers",
    "items": "the images: file, sha256, prompt, source model, metadata, newest metric scores, gate decisions",
    "fits": "the newest Bradley-Terry fit: each image's strength with a 95% CI",
    "rater_offsets": "the newest hierarchical Bradley-Terry fit's per-rater offsets: a rater's personal strength "
                     "of an image is population_strength + offset (stored where the rater judged the image)",
    "richhf": "per-image consolidated records in RichHF-18K's form (512x512 8-bit PNG artifact and "
              "misalignment maps, prompt_misalignment_label with 0 = misaligned, the four mean scores)",
}


def _params(*, include_images: bool = False, k: int = DEFAULT_K, exclude_free_text: bool = False,
            licence: str = "", title: str = "", include_rater_offsets: bool = False) -> dict:
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= 1000:
        raise InvalidInput("k (the smallest demographic cell released) must be a whole number from 1 to 1000.",
                           field="k")
    licence = (licence or "").strip()
    if len(licence) > 100 or any(ch in licence for ch in "\n\r"):
        raise InvalidInput("The licence is one short line (e.g. cc-by-4.0).", field="licence")
    if len(title or "") > 200:
        raise InvalidInput("The title is at most 200 characters.", field="title")
    return {"include_images": bool(include_images), "k": k, "exclude_free_text": bool(exclude_free_text),
            "licence": licence or "other", "title": (title or "").strip(),
            "include_rater_offsets": bool(include_rater_offsets)}


def release_request(*, project: Project, user=None, **options) -> DatasetRelease:
    """Ask for a new release (a job; published after commit)."""
    params = _params(**options)
    release = DatasetRelease.objects.create(project=project, params=params, requested_by=user,
                                            salt=secrets.token_hex(16))
    jobs.job_publish_on_commit(release)
    return release


def release_estimate(*, project: Project) -> dict:
    """What a release would hold, before it is made (rows, and the images' bytes)."""
    return {"judgments": answers_included(Judgment.objects.filter(project=project)).count(),
            "rankings": answers_included(RankAnswer.objects.filter(project=project, task__pool__isnull=True)).count(),
            "annotations": answers_included(Annotation.objects.filter(project=project)).count(),
            "items": project.items.count(), "image_bytes": release_files.image_bytes(project=project)}


def _card(*, project: Project, params: dict, manifest: dict, demo_meta: dict, cutoffs: dict, released_at) -> str:
    configs = [{"config_name": name, "data_files": [{"split": "train", "path": f"{name}/*.parquet"}]}
               for name in TABLES if manifest["tables"].get(name, {}).get("rows")]
    metadata = {"license": params["licence"], "pretty_name": params["title"] or project.name,
                "tags": ["human-preference", "text-to-image", "pairwise-comparison"],
                "configs": configs}
    sheet = None
    report = selectors.agreement_report_latest(project=project)
    if report is not None:
        from ranking import presenters

        sheet = presenters.datasheet(project=project, report=report)
    body = render_to_string("ranking/release_card.md", {
        "project": project, "params": params, "manifest": manifest, "demo": demo_meta, "cutoffs": cutoffs,
        "released_at": released_at, "sheet": sheet,
        # a list, not the dict: a table is named "items", which a template would read as the dict's key
        "tables": [(name, manifest["tables"][name]["rows"], CONFIG_DESCRIPTIONS[name]) for name in TABLES
                   if name in manifest["tables"]],
    })
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n\n" + body


def release_write(*, project: Project, root: Path, params: dict, salt: str, cutoffs: dict, progress=None) -> dict:
    """Write a release folder at ``root`` (made; must not exist yet). Returns the manifest."""
    step = progress or (lambda fraction: None)
    root.mkdir(parents=True, exist_ok=False)
    demographics, demo_meta = release_files.demographic_table(project=project, k=params["k"],
                                                              exclude_free_text=params["exclude_free_text"])
    raters = release_files.ReleasedRaters(project=project, salt=salt, demographics=demographics, demo_meta=demo_meta)
    common = {"project": project, "raters": raters}
    manifest = {"tables": {}}
    manifest["tables"]["judgments"] = release_files.write_judgments(root, cutoff_id=cutoffs["judgment"], **common)
    step(0.35)
    manifest["tables"]["rankings"] = release_files.write_rankings(root, cutoff_id=cutoffs["ranking"], **common)
    manifest["tables"]["annotations"] = release_files.write_annotations(root, cutoff_id=cutoffs["annotation"],
                                                                        **common)
    step(0.6)
    manifest["tables"]["items"] = release_files.write_items(root, project=project)
    manifest["tables"]["fits"] = release_files.write_fits(root, project=project)
    if params.get("include_rater_offsets"):  # asked for (older releases' params lack the key)
        manifest["tables"]["rater_offsets"] = release_files.write_rater_offsets(root, project=project, raters=raters)
    manifest["tables"]["richhf"] = release_files.write_richhf(root, project=project, cutoff_id=cutoffs["annotation"])
    step(0.8)
    if params["include_images"]:
        manifest["images"] = release_files.copy_images(root, project=project)
    manifest["demographics"] = demo_meta
    manifest["excluded_raters"] = loaders.exclusions(project=project, cutoff_judgment_id=cutoffs["judgment"],
                                                     cutoff_annotation_id=cutoffs["annotation"],
                                                     cutoff_ranking_id=cutoffs["ranking"])
    released_at = timezone.now()
    (root / "README.md").write_text(_card(project=project, params=params, manifest=manifest, demo_meta=demo_meta,
                                          cutoffs=cutoffs, released_at=released_at), encoding="utf-8")
    return manifest


def _zip(root: Path) -> Path:
    """The folder as ``<root>.zip`` (stored: Parquet and PNG are compressed already)."""
    target = root.with_suffix(".zip")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, arcname=str(Path(root.name) / path.relative_to(root)))
    return target


def release_folder(release: DatasetRelease) -> Path:
    return Path(settings.MEDIA_ROOT) / "releases" / release.project.slug / str(release.pk)


def _prepare(release: DatasetRelease) -> bool:
    release.cutoff_judgment_id = Judgment.objects.filter(project_id=release.project_id).order_by("-id").values_list(
        "id", flat=True).first()
    release.cutoff_annotation_id = Annotation.objects.filter(project_id=release.project_id).order_by(
        "-id").values_list("id", flat=True).first()
    release.cutoff_ranking_id = RankAnswer.objects.filter(project_id=release.project_id).order_by(
        "-id").values_list("id", flat=True).first()
    return True


def _write(release: DatasetRelease, lease: jobs.Lease) -> jobs.Outcome:
    project = Project.objects.get(pk=release.project_id)
    root = release_folder(release)
    if root.exists():  # a worker died half-way: start again
        shutil.rmtree(root)
    root.with_suffix(".zip").unlink(missing_ok=True)
    cutoffs = {"judgment": release.cutoff_judgment_id, "annotation": release.cutoff_annotation_id,
               "ranking": release.cutoff_ranking_id}
    manifest = release_write(project=project, root=root, params=release.params, salt=release.salt, cutoffs=cutoffs,
                             progress=lease.progress)
    archive = _zip(root)
    lease.progress(0.98)
    return jobs.Outcome(fields={"manifest": manifest, "size_bytes": archive.stat().st_size,
                                "path": str(root.relative_to(settings.MEDIA_ROOT))})


def release_execute(*, release_id: int) -> None:
    """Write one release (the Celery task's body). Idempotent."""
    jobs.job_run(kind=KIND.name, job_id=release_id, body=_write, prepare=_prepare)


def release_make_now(*, project: Project, user=None, **options) -> DatasetRelease:
    """Request and write a release in this process (the command line, tests)."""
    release = DatasetRelease.objects.create(project=project, params=_params(**options), requested_by=user,
                                            salt=secrets.token_hex(16))
    release_execute(release_id=release.pk)
    release.refresh_from_db()
    return release
