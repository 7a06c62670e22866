"""The run command's demo seed: both demo projects, ready for raters, and safe to run again."""

import io

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command

from annotator.models import Project, Task

pytestmark = pytest.mark.django_db


def test_seed_demo_is_ready_and_idempotent():
    out = io.StringIO()
    call_command("seed_demo", "--base-url", "http://127.0.0.1:9999", stdout=out)
    text = out.getvalue()
    password = text.split("Log in as:        researcher / ")[1].split()[0]
    assert authenticate(username="researcher", password=password) is not None
    demo = Project.objects.get(slug="demo")
    rich = Project.objects.get(slug="demo-rich")
    assert f"/join/demo/{demo.join_token}/" in text and f"/join/demo-rich/{rich.join_token}/" in text
    assert demo.items.count() == 20 and demo.instruction_versions.count() == 1
    assert Task.objects.filter(project=demo, kind="pairwise").count() > 40
    assert Task.objects.filter(project=rich, kind="rich").count() == 6
    assert Task.objects.filter(project=rich, kind="checklist").count() == 6
    n_tasks = Task.objects.count()
    call_command("seed_demo", stdout=io.StringIO())
    assert Task.objects.count() == n_tasks and Project.objects.count() == 2
