"""Production settings pass Django's deployment checks, and the API schema builds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_has_no_warnings(tmp_path):
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE")},
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": "k" * 20 + "Zq8#vR!2mX@pL5&nW9^tY3*bH6(jC1)eF4-gA7+dS0=uK",
        "DEBUG": "0",
        "ALLOWED_HOSTS": "preflab.example.org",
        "PREFLAB_VAR_DIR": str(tmp_path),
    }
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                            cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_settings_refuse_to_start_without_secret_key(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "PREFLAB_VAR_DIR": str(tmp_path)})
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


@pytest.mark.parametrize("key", ["change-me", "short-key"])
def test_production_settings_refuse_the_example_or_a_short_secret_key(tmp_path, key):
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings", "PREFLAB_VAR_DIR": str(tmp_path), "SECRET_KEY": key,
                "DEBUG": "0"})
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                            text=True)
    assert result.returncode != 0 and "SECRET_KEY is a placeholder" in result.stderr
    env["DEBUG"] = "1"  # a developer's machine may use a throwaway key
    assert subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True,
                          text=True).returncode == 0


def test_compose_file_holds_no_database_password():
    compose = (ROOT / "docker-compose.yml").read_text()
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in compose and ":preflab@" not in compose
    example = dict(line.split("=", 1) for line in (ROOT / ".env.example").read_text().splitlines()
                   if "=" in line and not line.startswith("#"))
    assert example["POSTGRES_PASSWORD"] == ""  # the example names the setting, never a value


@pytest.mark.django_db
def test_openapi_schema_and_docs_page(client):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    assert b"/api/projects/{slug}/items/" in schema.content
    assert client.get("/api/docs/").status_code == 200
