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


def test_seed_demo_calibration_has_a_report_and_rounds_and_is_idempotent():
    from ranking.models import CalibrationReport, CalibrationRound, GateChange

    call_command("seed_demo", stdout=io.StringIO())
    out = io.StringIO()
    call_command("seed_demo_calibration", "--base-url", "http://127.0.0.1:9999", stdout=out)
    project = Project.objects.get(slug="demo-calibration")
    assert CalibrationReport.objects.filter(project=project, status="succeeded").exists()
    rounds = list(CalibrationRound.objects.filter(project=project).order_by("number"))
    assert [r.status for r in rounds] == ["closed"] * 4 + ["started"]
    for round_ in rounds[:4]:
        result = round_.results.get()
        assert result.status == "succeeded" and result.result["n_rankings"] == 3, result.error
    assert GateChange.objects.filter(gate__project=project, action="created").count() == 1
    assert "/projects/demo-calibration/rounds/" in out.getvalue()
    call_command("seed_demo_calibration", stdout=io.StringIO())
    assert CalibrationRound.objects.filter(project=project).count() == 5
