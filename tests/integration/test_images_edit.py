"""Images after upload: edit prompt, model and metadata; retire and restore; a manifest describing images
uploaded earlier; several files in one upload from the page."""

import io
import json
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from annotator import services
from annotator.errors import Conflict, InvalidInput
from annotator.imports import Upload, UploadRejected, items_import
from annotator.models import Annotation, Item, Judgment, Task
from tests.conftest import ready_rater
from tests.factories import ItemFactory, UserFactory, png_bytes

pytestmark = pytest.mark.django_db


def edit_url(item) -> str:
    return reverse("annotator:item_edit", args=[item.project.slug, item.pk])


def up(name, data):
    data = data.encode() if isinstance(data, str) else data
    return Upload(name=name, stream=io.BytesIO(data), size=len(data))


@pytest.fixture
def item(project):
    return project.items.order_by("id").first()


# Editing ---------------------------------------------------------------------------------------------


def test_researcher_edits_prompt_model_and_metadata(client, researcher, item):
    client.force_login(researcher)
    assert client.get(edit_url(item)).status_code == 200
    response = client.post(edit_url(item), {"prompt": "a green apple ", "source_model": "sdxl-1.0",
                                            "metadata": '{"seed": 7, "steps": 30}'})
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.prompt, item.source_model, item.metadata) == ("a green apple", "sdxl-1.0", {"seed": 7, "steps": 30})


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"metadata": "{not json"}, "metadata", "Not valid JSON"),
    ({"metadata": "[1, 2]"}, "metadata", "Must be a JSON object"),
    ({"prompt": "x" * 4001}, "prompt", "at most 4000 characters"),
    ({"source_model": "m" * 201}, "source_model", "at most 200 characters"),
])
def test_bad_edits_are_refused_naming_the_field(client, researcher, item, data, field, message):
    client.force_login(researcher)
    before = Item.objects.filter(pk=item.pk).values("prompt", "source_model", "metadata").get()
    response = client.post(edit_url(item), {"prompt": "changed", "source_model": "", "metadata": "{}", **data})
    assert response.status_code == 400
    assert message in str(response.context["form"].errors[field])
    assert Item.objects.filter(pk=item.pk).values("prompt", "source_model", "metadata").get() == before


def test_a_prompt_with_marked_words_cannot_change(researcher):
    project = services.project_create(owner=researcher, name="Rich edit", overlap=1)
    item = ItemFactory(project=project, prompt="a cat on a mat")
    services.consent_version_create(project=project, text="You agree.")
    services.instruction_version_create(project=project, text="Mark problems.", created_by=researcher)
    services.tasks_generate_single(project=project, kind="rich")
    rater = ready_rater(project)
    assignment = services.assignment_next(rater=rater)
    services.annotation_create(rater=rater, assignment_id=assignment.pk, idempotency_key=uuid.uuid4(),
                               instruction_version_id=rater.acknowledged_instruction_id, misaligned_words=[1],
                               scores={"plausibility": 3, "alignment": 3, "aesthetics": 3, "overall": 3})
    with pytest.raises(Conflict) as err:
        services.item_update(item=item, prompt="a dog on a mat")
    assert err.value.field == "prompt"
    updated = services.item_update(item=item, prompt="a cat on a mat", source_model="m2", metadata={"k": 1})
    assert (updated.prompt, updated.source_model, updated.metadata) == ("a cat on a mat", "m2", {"k": 1})


def test_service_checks_types(item):
    for fields, name in (({"prompt": 5}, "prompt"), ({"metadata": ["a"]}, "metadata"),
                         ({"metadata": {"x": object()}}, "metadata"), ({"source_model": None}, "source_model")):
        with pytest.raises(InvalidInput) as err:
            services.item_update(item=item, **fields)
        assert err.value.field == name


def test_prompt_script_is_escaped_on_the_edit_page(client, researcher, item):
    services.item_update(item=item, prompt="<script>alert(1)</script>")
    client.force_login(researcher)
    html = client.get(edit_url(item)).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


# Retiring ---------------------------------------------------------------------------------------------


def test_a_retired_image_is_never_handed_out_again_and_its_judgments_stay(project, item):
    rater = ready_rater(project)
    first = services.assignment_next(rater=rater)
    services.judgment_create(rater=rater, assignment_id=first.pk, choice="left", idempotency_key=uuid.uuid4(),
                             instruction_version_id=rater.acknowledged_instruction_id)
    retired_item = Item.objects.get(pk=first.left_item_id)
    services.item_retire(item=retired_item)
    assert not Task.objects.filter(project=project, is_active=True).filter(
        item_a=retired_item).exists()
    assert Judgment.objects.filter(left_item=retired_item).count() == 1  # kept
    for r in (rater, ready_rater(project), ready_rater(project)):
        while (a := services.assignment_next(rater=r)) is not None:
            assert retired_item.pk not in (a.left_item_id, a.right_item_id)
            services.judgment_create(rater=r, assignment_id=a.pk, choice="tie", idempotency_key=uuid.uuid4(),
                                     instruction_version_id=r.acknowledged_instruction_id)
    # 4 images, one retired: the 3 pairs of the other three are the only ones still handed out
    assert Task.objects.filter(project=project, is_active=True).count() == 3


def test_new_tasks_leave_retired_images_out(project, researcher):
    extra = ItemFactory(project=project, prompt="a red apple")
    services.item_retire(item=extra)
    assert services.tasks_generate_within_prompt(project=project) == 0
    assert services.tasks_generate_single(project=project, kind="rich") == 4
    assert not Task.objects.filter(item_a=extra).exists() and not Task.objects.filter(item_b=extra).exists()
    with pytest.raises(InvalidInput, match="retired") as err:
        services.tasks_generate_from_pairs(project=project, pairs=[(extra.original_name, str(project.items.first().pk))])
    assert err.value.field == "pairs"


def test_restoring_hands_its_tasks_out_again_unless_the_other_image_is_retired(project):
    a, b, c, _ = project.items.order_by("id")
    services.item_retire(item=a)
    services.item_retire(item=b)
    services.item_restore(item=a)
    active = set(Task.objects.filter(project=project, is_active=True).values_list("item_a_id", "item_b_id"))
    assert (a.pk, b.pk) not in active  # b is still retired
    assert (a.pk, c.pk) in active
    assert Item.objects.get(pk=a.pk).retired_at is None


def test_retire_and_restore_from_the_page(client, researcher, project, item):
    client.force_login(researcher)
    assert client.post(reverse("annotator:item_retire", args=[project.slug, item.pk])).status_code == 302
    item.refresh_from_db()
    assert item.retired_at is not None
    listing = client.get(reverse("annotator:items", args=[project.slug])).content.decode()
    assert "3 images" in listing and "Show 1 retired" in listing
    retired = client.get(reverse("annotator:items", args=[project.slug]) + "?show=retired").content.decode()
    assert item.original_name in retired
    assert "Restore the image" in client.get(edit_url(item)).content.decode()
    assert client.post(reverse("annotator:item_restore", args=[project.slug, item.pk])).status_code == 302
    item.refresh_from_db()
    assert item.retired_at is None
    assert client.get(reverse("annotator:item_retire", args=[project.slug, item.pk])).status_code == 405


def test_image_pages_refuse_the_forbidden_access(client, project, item):
    urls = [edit_url(item), reverse("annotator:item_retire", args=[project.slug, item.pk]),
            reverse("annotator:item_restore", args=[project.slug, item.pk])]
    for url in urls:  # anonymous
        response = client.post(url, {"prompt": "x", "metadata": "{}"})
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    client.force_login(UserFactory())  # not a member
    assert client.get(urls[0]).status_code == 404
    upload = SimpleUploadedFile("o.png", png_bytes(), content_type="image/png")
    assert client.post(reverse("annotator:items", args=[project.slug]), {"files": [upload]}).status_code == 404
    for url in urls:
        assert client.post(url, {"prompt": "x", "metadata": "{}"}).status_code == 404
    viewer = UserFactory()
    services.membership_set(project=project, user=viewer, role="viewer")
    client.force_login(viewer)
    page = client.get(urls[0])
    assert page.status_code == 200 and 'id="save-item"' not in page.content.decode()
    for url in urls:
        assert client.post(url, {"prompt": "x", "metadata": "{}"}).status_code == 403
    upload = SimpleUploadedFile("v.png", png_bytes(), content_type="image/png")
    assert client.post(reverse("annotator:items", args=[project.slug]), {"files": [upload]}).status_code == 403
    assert project.items.count() == 4
    item.refresh_from_db()
    assert item.prompt == "a red apple" and item.retired_at is None
    other = services.project_create(owner=viewer, name="Viewer's own")
    assert client.get(reverse("annotator:item_edit", args=[other.slug, item.pk])).status_code == 404


# A manifest describing images uploaded earlier ---------------------------------------------------------


@pytest.fixture
def uploaded(researcher):
    project = services.project_create(owner=researcher, name="Manifests")
    data = {"a.png": png_bytes(), "b.png": png_bytes(), "c.png": png_bytes()}
    items_import(project=project, uploads=[up(name, blob) for name, blob in data.items()])
    return project


def test_a_manifest_alone_describes_earlier_images_by_name_or_sha256(uploaded):
    b = Item.objects.get(project=uploaded, original_name="b.png")
    manifest = f"file,prompt,model,seed\na.png,a cat,m1,7\n{b.sha256},a dog,m2,8\n"
    report = items_import(project=uploaded, uploads=[], manifest=up("manifest.csv", manifest))
    assert sorted(report.updated) == ["a.png", "b.png"] and report.created == []
    a = Item.objects.get(project=uploaded, original_name="a.png")
    b.refresh_from_db()
    assert (a.prompt, a.source_model, a.metadata) == ("a cat", "m1", {"seed": "7"})
    assert (b.prompt, b.source_model, b.metadata) == ("a dog", "m2", {"seed": "8"})


def test_only_the_columns_given_are_changed(uploaded):
    services.item_update(item=Item.objects.get(original_name="c.png"), source_model="keep-me", metadata={"k": 1})
    manifest = json.dumps({"file": "c.png", "prompt": "only the prompt"})
    items_import(project=uploaded, uploads=[], manifest=up("manifest.jsonl", manifest))
    c = Item.objects.get(original_name="c.png")
    assert (c.prompt, c.source_model, c.metadata) == ("only the prompt", "keep-me", {"k": 1})


def test_a_bad_line_rejects_everything_and_names_the_line(uploaded):
    new = png_bytes()
    manifest = "file,prompt\nnew.png,brand new\na.png,changed\nmissing.png,nowhere\n"
    with pytest.raises(UploadRejected) as exc:
        items_import(project=uploaded, uploads=[up("new.png", new)], manifest=up("manifest.csv", manifest))
    problems = dict(exc.value.problems)
    assert "no image of this project has this file name" in problems["missing.png"]
    assert "manifest.csv line 4" in problems["missing.png"]
    assert Item.objects.filter(project=uploaded).count() == 3  # new.png not created
    assert Item.objects.get(original_name="a.png").prompt == ""  # a.png not changed


def test_an_ambiguous_name_asks_for_the_sha256(uploaded):
    items_import(project=uploaded, uploads=[up("b.png", png_bytes())])  # a second, different b.png
    with pytest.raises(UploadRejected) as exc:
        items_import(project=uploaded, uploads=[], manifest=up("manifest.csv", "file,prompt\nb.png,which?\n"))
    assert "name it by its sha256" in dict(exc.value.problems)["b.png"]


def test_a_manifest_line_that_would_break_marked_words_is_refused(uploaded, researcher):
    a = Item.objects.get(original_name="a.png")
    services.item_update(item=a, prompt="a cat")
    b = Item.objects.get(original_name="b.png")
    services.consent_version_create(project=uploaded, text="ok")
    services.instruction_version_create(project=uploaded, text="Mark.", created_by=researcher)
    services.tasks_generate_single(project=uploaded, kind="rich")
    rater = ready_rater(uploaded)
    while (assignment := services.assignment_next(rater=rater)) is not None:
        services.annotation_create(rater=rater, assignment_id=assignment.pk, idempotency_key=uuid.uuid4(),
                                   instruction_version_id=rater.acknowledged_instruction_id,
                                   scores={"plausibility": 3, "alignment": 3, "aesthetics": 3, "overall": 3})
    assert Annotation.objects.filter(item=a).exists()
    manifest = "file,prompt\na.png,a dog\nb.png,fine\n"
    with pytest.raises(UploadRejected) as exc:
        items_import(project=uploaded, uploads=[], manifest=up("manifest.csv", manifest))
    assert "cannot change" in dict(exc.value.problems)["manifest.csv line 2: a.png"]
    b.refresh_from_db()
    assert b.prompt == ""


def test_a_reuploaded_image_with_a_manifest_row_is_updated(uploaded):
    blob = Item.objects.get(original_name="a.png").image.read()
    report = items_import(project=uploaded, uploads=[up("again.png", blob)],
                          manifest=up("manifest.csv", "file,prompt\nagain.png,described now\n"))
    assert report.already_present == ["again.png"] and report.updated == ["a.png"]
    assert Item.objects.get(original_name="a.png").prompt == "described now"


# Uploading from the page -------------------------------------------------------------------------------


def test_the_file_input_takes_several_files(client, researcher, uploaded):
    client.force_login(researcher)
    html = client.get(reverse("annotator:items", args=[uploaded.slug])).content.decode()
    assert 'type="file" name="files"' in html and " multiple" in html
    assert "allow_multiple_selected" not in html
    files = [SimpleUploadedFile(f"n{i}.png", png_bytes(), content_type="image/png") for i in range(3)]
    response = client.post(reverse("annotator:items", args=[uploaded.slug]), {"files": files})
    assert response.status_code == 302
    assert Item.objects.filter(project=uploaded).count() == 6


def test_the_page_takes_a_manifest_alone_and_refuses_an_empty_upload(client, researcher, uploaded):
    client.force_login(researcher)
    url = reverse("annotator:items", args=[uploaded.slug])
    empty = client.post(url, {})
    assert empty.status_code == 400 and "Choose image files" in empty.content.decode()
    manifest = SimpleUploadedFile("manifest.csv", b"file,prompt\nc.png,from the page\n", content_type="text/csv")
    assert client.post(url, {"manifest": manifest}).status_code == 302
    assert Item.objects.get(original_name="c.png").prompt == "from the page"
    bad = SimpleUploadedFile("manifest.csv", b"file,prompt\nzzz.png,?\n", content_type="text/csv")
    refused = client.post(url, {"manifest": bad})
    assert refused.status_code == 400 and "zzz.png" in refused.content.decode()
