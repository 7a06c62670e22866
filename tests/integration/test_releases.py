"""Dataset releases: the folder loads with the Hugging Face datasets library, raters are salted pseudonyms,
rare demographics are suppressed, RichHF-18K-style records, pages, API, command, permissions."""

import io
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from annotator import selectors as annotator_selectors
from annotator import services
from annotator.feedback import prompt_tokens
from annotator.models import Rater
from annotator.services.quality import rater_exclude
from ranking import release_files
from ranking.models import DatasetRelease, FitRun, ItemScore, Metric, MetricRun, MetricScore, RaterItemOffset
from ranking.services import fit_runs, gates, releases
from tests.factories import ItemFactory, UserFactory

pytestmark = pytest.mark.django_db

PROMPT = "a red apple, on a wooden table"


@pytest.fixture
def study(researcher):
    """4 images; 3 raters (two from one country, one from another) judge every pair and give rich feedback
    on every image; rater 0 marks the top-left corner and the word 'red' on every image."""
    project = services.project_create(owner=researcher, name="Released", overlap=3)
    items = [ItemFactory(project=project, prompt=PROMPT, source_model=f"m{k % 2}") for k in range(4)]
    services.consent_version_create(project=project, text="You agree.")
    instruction = services.instruction_version_create(project=project, text="Judge.", created_by=researcher)
    services.tasks_generate_within_prompt(project=project, random_state=0)
    services.tasks_generate_single(project=project, kind="rich", random_state=0)
    raters = []
    for k, country in enumerate(["France", "France", "Chile"]):
        rater, _ = services.rater_join(project=project, prolific_pid=f"PID{k}SECRET")
        services.rater_consent(rater=rater, consent_version_id=annotator_selectors.consent_current(project=project).pk)
        services.demographics_submit(rater=rater, country=country, age_band="25-34")
        rater = services.rater_acknowledge_instructions(rater=rater, instruction_version_id=instruction.pk)
        raters.append(rater)
        while (a := services.assignment_next(rater=rater)) is not None:
            if a.task.kind == "pairwise":
                services.judgment_create(rater=rater, assignment_id=a.pk, choice="left", idempotency_key=uuid.uuid4(),
                                         instruction_version_id=instruction.pk, response_time_ms=1500)
            else:
                points = [{"x": 0.1, "y": 0.1, "kind": "artifact"}] if k == 0 else []
                services.annotation_create(
                    rater=rater, assignment_id=a.pk, idempotency_key=uuid.uuid4(),
                    instruction_version_id=instruction.pk, points=points, misaligned_words=[1] if k < 2 else [],
                    scores={"plausibility": 3 + k % 2, "alignment": 4, "aesthetics": 5, "overall": 2})
    run = MetricRun.objects.create(project=project, source="imported", status="succeeded")
    metric = Metric.objects.create(project=project, name="sharp", direction="higher")
    for k, item in enumerate(items):
        MetricScore.objects.create(run=run, metric=metric, item=item, value=float(k))
    gates.gate_create(project=project, metric=metric, threshold=1.5, user=researcher)
    FitRun.objects.filter(project=project).delete()
    fit = fit_runs.fit_run_request(project=project)
    fit_runs.fit_run_execute(fit_run_id=fit.pk)
    return project, items, raters


def load_dataset(root: Path, name: str, split: str = "train"):
    """``datasets.load_dataset`` with a cache of this release's own: the library caches by the files' path,
    and test folders are reused across runs."""
    from datasets import load_dataset as hf_load_dataset

    return hf_load_dataset(str(root), name, split=split, cache_dir=str(root.parent / f"hf-cache-{root.name}"))


def _release(project, **options) -> tuple[DatasetRelease, Path]:
    release = releases.release_make_now(project=project, **options)
    assert release.status == "succeeded", release.error
    return release, releases.release_folder(release)


def test_a_release_loads_with_the_datasets_library(study, enqueued):
    project, items, _raters = study
    release, root = _release(project, licence="cc-by-4.0")
    tables = release.manifest["tables"]
    assert tables["judgments"]["rows"] == 3 * 6 and tables["annotations"]["rows"] == 3 * 4
    assert tables["items"]["rows"] == 4 and tables["fits"]["rows"] == 4 and tables["richhf"]["rows"] == 4
    card = (root / "README.md").read_text()
    assert card.startswith("---\nlicense: cc-by-4.0") and "config_name: judgments" in card
    judgments = load_dataset(root, "judgments", split="train")
    assert judgments.num_rows == 18
    assert {"rater", "prompt", "left_source_model", "choice", "instruction_version", "rater_country"} <= set(
        judgments.column_names)
    assert set(judgments["prompt"]) == {PROMPT} and set(judgments["instruction_version"]) == {1}
    items_ds = load_dataset(root, "items", split="train")
    by_id = {row["item_id"]: row for row in items_ds}
    assert [by_id[i.pk]["gate_sharp_overall"] for i in items] == [False, False, True, True]
    assert by_id[items[3].pk]["metric_sharp_v1"] == 3.0
    annotations = load_dataset(root, "annotations", split="train")
    marked = [row for row in annotations if row["points"]]
    assert len(marked) == 4 and marked[0]["points"][0] == {"x": 0.1, "y": 0.1, "kind": "artifact"}
    for name in ("fits", "richhf"):
        assert load_dataset(root, name, split="train").num_rows == tables[name]["rows"]
    assert tables["rankings"] == {"file": None, "rows": 0, "bytes": 0}  # no rank tasks: no empty config
    assert "config_name: rankings" not in card and "none in this study" in card
    with zipfile.ZipFile(root.with_suffix(".zip")) as archive:
        assert f"{root.name}/judgments/judgments.parquet" in archive.namelist()
        assert release.size_bytes == root.with_suffix(".zip").stat().st_size


def test_raters_are_salted_pseudonyms_and_no_crowd_id_leaves(study, enqueued):
    project, _, raters = study
    _first, root1 = _release(project)
    _second, root2 = _release(project)
    names1 = set(load_dataset(root1, "judgments", split="train")["rater"])
    names2 = set(load_dataset(root2, "judgments", split="train")["rater"])
    assert len(names1) == 3 and not names1 & names2  # the same raters, unlinkable across releases
    secrets_ = [r.public_id for r in raters] + [r.prolific_pid for r in raters]
    for path in root1.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in secrets_), path


def test_an_excluded_raters_answers_are_left_out_and_counted(study, researcher, enqueued):
    project, _, raters = study
    rater_exclude(rater=raters[2], by_user=researcher, reason="Answered every pair in under a second.")
    estimate = releases.release_estimate(project=project)
    assert (estimate["judgments"], estimate["annotations"]) == (2 * 6, 2 * 4)
    release, root = _release(project)
    tables = release.manifest["tables"]
    assert tables["judgments"]["rows"] == 2 * 6 and tables["annotations"]["rows"] == 2 * 4
    assert len(set(load_dataset(root, "judgments", split="train")["rater"])) == 2
    excluded = release.manifest["excluded_raters"]
    assert (excluded["n_raters"], excluded["n_judgments"], excluded["n_annotations"]) == (1, 6, 4)
    assert excluded["reasons"] == [{"reason": "Answered every pair in under a second.", "n": 1}]
    card = (root / "README.md").read_text()
    assert "Left out: the answers of 1 rater the researchers excluded" in card
    assert "Answered every pair in under a second. (1)" in card


def test_rare_demographic_answers_are_suppressed_and_the_card_says_so(study, enqueued):
    project, _, _ = study
    _, root = _release(project, k=2)
    countries = load_dataset(root, "judgments", split="train")["rater_country"]
    assert sorted(set(countries)) == ["(suppressed)", "France"]
    card = (root / "README.md").read_text()
    assert "fewer than 2 raters" in card and "country: 1 answer" in card
    _, root = _release(project, k=2, exclude_free_text=True)
    assert "rater_country" not in load_dataset(root, "judgments", split="train").column_names


def test_richhf_records_read_like_the_public_release(study, enqueued):
    project, items, _ = study
    _, root = _release(project)
    rows = {r["item_id"]: r for r in load_dataset(root, "richhf", split="train")}
    row = rows[items[0].pk]
    artifact = np.asarray(Image.open(io.BytesIO(row["artifact_map"])))
    assert artifact.shape == (512, 512) and artifact.dtype == np.uint8
    # one of three raters marked (0.1, 0.1): a disk of radius 0.05·512 around (51, 51) at 255/3
    assert artifact[51, 51] == 85 and artifact[300, 300] == 0
    assert np.asarray(Image.open(io.BytesIO(row["misalignment_map"]))).max() == 0
    labels = row["prompt_misalignment_label"].split(" ")
    assert len(labels) == len(prompt_tokens(PROMPT))
    assert labels[1] == "0" and set(labels[:1] + labels[2:]) == {"1"}  # 'red': two of three raters
    assert row["artifact_score"] == pytest.approx(10 / 3) and row["overall_score"] == 2.0  # plausibility 3, 4, 3


def test_pages_api_command_and_permissions(study, client, researcher, enqueued, tmp_path,
                                          django_capture_on_commit_callbacks):
    project, _, _ = study
    viewer = UserFactory()
    services.membership_add(project=project, user_reference=viewer.username, role="viewer")
    client.force_login(viewer)
    url = reverse("ranking:releases", args=[project.slug])
    assert client.get(url).status_code == 200
    assert client.post(url, {"k": 5}).status_code == 403
    client.force_login(UserFactory())
    assert client.get(url).status_code == 404
    client.force_login(researcher)
    assert client.post(url, {"k": 0}).status_code == 200 and not DatasetRelease.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"k": 3, "licence": "cc-by-4.0"})
    assert response.status_code == 302
    queued = DatasetRelease.objects.get()
    assert ("ranking.dataset_release_execute", queued.pk) in enqueued
    releases.release_execute(release_id=queued.pk)
    download = client.get(reverse("ranking:release_download", args=[project.slug, queued.pk]))
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    api = APIClient()
    api.force_authenticate(researcher)
    assert api.post(f"/api/projects/{project.slug}/releases/", {"k": -1}, format="json").status_code == 400
    created = api.post(f"/api/projects/{project.slug}/releases/", {"k": 2}, format="json")
    assert created.status_code == 202
    assert api.get(f"/api/projects/{project.slug}/releases/{queued.pk}/").json()["manifest"]["tables"]["items"][
        "rows"] == 4
    assert api.get(f"/api/projects/{project.slug}/releases/{created.json()['id']}/download/").status_code == 404
    out = tmp_path / "release"
    call_command("dataset_release", project.slug, "--out", str(out), "--images", stdout=io.StringIO())
    assert (out / "README.md").exists() and len(list((out / "images").iterdir())) == 4
    assert Rater.objects.filter(project=project).count() == 3


@pytest.mark.parametrize("shape", [(512, 512), (3, 1), (7, 300)])
def test_release_pngs_decode_to_the_same_grey_levels(shape):
    """The release's own PNG writer round-trips through Pillow, for every grey level and odd sizes."""
    from ranking.release_files import png_grey8

    rng = np.random.default_rng(shape[1])
    grey = rng.integers(0, 256, size=shape, dtype=np.uint8)
    grey[:, ::5] = 255  # white columns next to dark ones
    decoded = Image.open(io.BytesIO(png_grey8(grey)))
    assert decoded.mode == "L" and decoded.size == (shape[1], shape[0])
    np.testing.assert_array_equal(np.asarray(decoded), grey)


def test_per_rater_offsets_only_when_asked(study, enqueued):
    project, _, raters = study
    _, root = _release(project)
    assert not (root / "rater_offsets").exists()
    assert "rater_offsets" not in (root / "README.md").read_text()
    fit = fit_runs.fit_run_request(project=project, model="hbt")
    fit_runs.fit_run_execute(fit_run_id=fit.pk)
    fit.refresh_from_db()
    assert fit.status == "succeeded", fit.error
    release, root = _release(project, include_rater_offsets=True)
    offsets = list(load_dataset(root, "rater_offsets"))
    stored = RaterItemOffset.objects.filter(fit=fit)
    assert len(offsets) == stored.count() > 0 and release.manifest["tables"]["rater_offsets"]["fit_id"] == fit.pk
    # the same pseudonyms as the judgments table of this release; population strength + offset per row
    judged_by = {r["rater"] for r in load_dataset(root, "judgments")}
    assert {r["rater"] for r in offsets} <= judged_by
    strengths = dict(ItemScore.objects.filter(fit=fit).values_list("item_id", "strength"))
    by_key = {(r.rater_id, r.item_id): r.offset for r in stored}
    pseudonym_of = {r.pk: release_files.pseudonym(release.salt, r.public_id) for r in raters}
    for row in offsets:
        rater_id = next(pk for pk, p in pseudonym_of.items() if p == row["rater"])
        assert row["offset"] == pytest.approx(by_key[(rater_id, row["item_id"])])
        assert row["population_strength"] == pytest.approx(strengths[row["item_id"]])
    assert "`rater_offsets`" in (root / "README.md").read_text()
