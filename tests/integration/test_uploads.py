"""Image import: all-or-nothing, every bad file named, archives and images checked."""

import io
import json
import zipfile

import pytest
from django.urls import reverse
from PIL import Image
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotator import services
from annotator.imports import Upload, UploadRejected, items_import
from annotator.models import Item
from tests.factories import png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def empty_project(researcher):
    return services.project_create(owner=researcher, name="Uploads")


def up(name, data):
    return Upload(name=name, stream=io.BytesIO(data), size=len(data))


def zip_of(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def problems_of(exc):
    return {name: reason for name, reason in exc.value.problems}


def test_single_files_are_imported(empty_project):
    report = items_import(project=empty_project, uploads=[up("a.png", png_bytes()), up("b.png", png_bytes())])
    assert len(report.created) == 2
    item = Item.objects.get(project=empty_project, original_name="a.png")
    assert (item.width, item.height, item.image_format) == (32, 24, "PNG")
    assert item.image.read()[:8] == b"\x89PNG\r\n\x1a\n"


def test_zip_with_csv_manifest(empty_project):
    manifest = "file,prompt,model,metadata,seed\nimgs/a.png,a cat,m1,\"{\"\"steps\"\": 30}\",7\nimgs/b.png,a dog,m2,,8\n"
    data = zip_of({"imgs/a.png": png_bytes(), "imgs/b.png": png_bytes(), "manifest.csv": manifest})
    items_import(project=empty_project, uploads=[up("batch.zip", data)])
    a = Item.objects.get(project=empty_project, original_name="imgs/a.png")
    assert (a.prompt, a.source_model) == ("a cat", "m1")
    assert a.metadata == {"steps": 30, "seed": "7"}


def test_jsonl_manifest_next_to_images(empty_project):
    manifest = "\n".join(json.dumps(r) for r in [
        {"file": "a.png", "prompt": "one", "model": "m", "metadata": {"k": 1}},
        {"file": "b.png", "prompt": "two", "model": "m"},
    ]).encode()
    items_import(project=empty_project, uploads=[up("a.png", png_bytes()), up("b.png", png_bytes())],
                 manifest=up("manifest.jsonl", manifest))
    assert set(Item.objects.values_list("prompt", flat=True)) == {"one", "two"}


def test_corrupt_image_rejects_whole_upload(empty_project):
    good = png_bytes()
    corrupt = png_bytes(64, 64)[:-40]  # truncated
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("good.png", good), up("broken.png", corrupt)])
    assert "broken.png" in problems_of(exc)
    assert Item.objects.count() == 0


def test_non_image_renamed_png_is_rejected(empty_project):
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("ok.png", png_bytes()),
                                                     up("evil.png", b"<script>alert(1)</script>")])
    assert "not an image" in problems_of(exc)["evil.png"]
    assert Item.objects.count() == 0


def test_zip_with_parent_paths_is_rejected(empty_project, settings, tmp_path):
    data = zip_of({"ok.png": png_bytes(), "../../escape.png": png_bytes()})
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("bad.zip", data)])
    assert any("unsafe path" in reason for reason in problems_of(exc).values())
    assert Item.objects.count() == 0
    assert not (tmp_path / "escape.png").exists()


def test_oversized_image_is_rejected(empty_project, settings):
    settings.PREFLAB_UPLOAD = {**settings.PREFLAB_UPLOAD, "MAX_PIXELS": 100 * 100}
    buf = io.BytesIO()
    Image.new("RGB", (200, 200), "white").save(buf, format="PNG")
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("huge.png", buf.getvalue())])
    assert "pixel" in problems_of(exc)["huge.png"]


def test_too_many_bytes_is_rejected(empty_project, settings):
    settings.PREFLAB_UPLOAD = {**settings.PREFLAB_UPLOAD, "MAX_FILE_BYTES": 50}
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("big.png", png_bytes(64, 64))])
    assert "limit" in problems_of(exc)["big.png"]


def test_zip_bomb_ratio_is_rejected(empty_project):
    data = zip_of({"bomb.png": b"\0" * 5_000_000})
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("bomb.zip", data)])
    assert any("zip bomb" in r for r in problems_of(exc).values())


def test_format_outside_allow_list_is_rejected(empty_project):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="BMP")
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("pic.png", buf.getvalue())])
    assert "BMP" in problems_of(exc)["pic.png"]


def test_manifest_and_files_must_match(empty_project):
    manifest = b"file,prompt\na.png,one\nmissing.png,two\n"
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("a.png", png_bytes()), up("extra.png", png_bytes())],
                     manifest=up("manifest.csv", manifest))
    problems = problems_of(exc)
    assert "listed in the manifest but not uploaded" in problems["missing.png"]
    assert "not listed in the manifest" in problems["extra.png"]


def test_reupload_is_idempotent(empty_project):
    data = png_bytes()
    items_import(project=empty_project, uploads=[up("a.png", data)])
    report = items_import(project=empty_project, uploads=[up("a-again.png", data)])
    assert report.already_present == ["a-again.png"] and report.created == []
    assert Item.objects.count() == 1


def test_api_upload_names_the_bad_file(empty_project, researcher):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=researcher).key}")
    good = io.BytesIO(png_bytes())
    good.name = "good.png"
    bad = io.BytesIO(b"GIF89a not really")
    bad.name = "bad.gif"
    response = client.post(reverse("api_items", args=[empty_project.slug]), {"files": [good, bad]},
                           format="multipart")
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "upload_rejected"
    assert [p["file"] for p in body["problems"]] == ["bad.gif"]
    assert Item.objects.count() == 0
