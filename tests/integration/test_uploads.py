"""Image import: all-or-nothing, every bad file named, archives and images checked."""

import io
import json
import random
import struct
import tracemalloc
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


# Memory stays bounded: members are streamed, sizes checked before and while reading -------------------


def _compressible_member(zf: zipfile.ZipFile, name: str, size: int) -> None:
    """A member of ``size`` bytes that deflates about 110:1 (under the ratio guard): 8 KiB of noise per MiB."""
    noise = random.Random(name).randbytes(8 * 1024)
    chunk = noise + b"\0" * (1024 * 1024 - len(noise))
    info = zipfile.ZipInfo(name)
    info.compress_type = zipfile.ZIP_DEFLATED
    with zf.open(info, "w", force_zip64=True) as fh:
        for _ in range(size // len(chunk)):
            fh.write(chunk)


@pytest.fixture(scope="module")
def compressible_bomb(tmp_path_factory):
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        for i in range(8):
            _compressible_member(zf, f"img{i}.png", 100 * 1024 * 1024)
    assert path.stat().st_size < 10 * 1024 * 1024
    return path


@pytest.mark.parametrize(("budget", "refusal"), [
    (None, "the upload expands to more than 536,870,912 bytes uncompressed"),  # the default budget: 512 MiB
    (2**31, "104,857,600 bytes; the limit per file is 26,214,400"),  # a budget that fits: each member refused
])
def test_a_zip_of_huge_compressible_members_is_refused_in_bounded_memory(empty_project, settings, compressible_bomb,
                                                                        budget, refusal):
    """The probe's archive: a few MB of ZIP expanding to 8 × 100 MiB. It once took a worker from 244 MB to
    1,163 MB before the refusal; now nothing is read past the image byte limit or the upload's budget."""
    if budget is not None:
        settings.PREFLAB_UPLOAD = {**settings.PREFLAB_UPLOAD, "MAX_UPLOAD_UNCOMPRESSED_BYTES": budget}
    path = compressible_bomb
    tracemalloc.start()
    try:
        with path.open("rb") as fh, pytest.raises(UploadRejected) as exc:
            items_import(project=empty_project, uploads=[Upload(name="bomb.zip", stream=fh,
                                                                size=path.stat().st_size)])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 150 * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"
    assert all(refusal in reason for reason in problems_of(exc).values()), problems_of(exc)
    assert Item.objects.count() == 0


def test_the_uncompressed_budget_of_an_upload_is_enforced(empty_project, settings):
    images = {f"{i}.png": png_bytes(seed=i) for i in range(5)}
    total = sum(len(data) for data in images.values())
    settings.PREFLAB_UPLOAD = {**settings.PREFLAB_UPLOAD, "MAX_UPLOAD_UNCOMPRESSED_BYTES": total - 1}
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("batch.zip", zip_of(images))])
    assert any("split it into smaller uploads" in r for r in problems_of(exc).values())
    # Spread over an archive and plain files, the budget is the upload's, not each file's.
    settings.PREFLAB_UPLOAD = {**settings.PREFLAB_UPLOAD, "MAX_UPLOAD_UNCOMPRESSED_BYTES": total - 1}
    first, *rest = images.items()
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("part.zip", zip_of(dict(rest))), up(*first)])
    assert "split it" in problems_of(exc)[first[0]]
    settings.PREFLAB_UPLOAD = {**settings.PREFLAB_UPLOAD, "MAX_UPLOAD_UNCOMPRESSED_BYTES": total}
    assert len(items_import(project=empty_project, uploads=[up("batch.zip", zip_of(images))]).created) == 5


def test_a_member_bigger_than_its_directory_entry_says_is_refused(empty_project):
    """Sizes are checked while reading: a member whose central-directory size is a lie is not trusted."""
    data = bytearray(zip_of({"liar.png": png_bytes(64, 64) + b"\0" * 200_000}))
    central = data.rfind(b"PK\x01\x02")
    data[central + 24:central + 28] = struct.pack("<I", 100)  # uncompressed size in the central directory
    with pytest.raises(UploadRejected) as exc:
        items_import(project=empty_project, uploads=[up("liar.zip", bytes(data))])
    assert "corrupt or unreadable" in problems_of(exc)["liar.zip:liar.png"]
