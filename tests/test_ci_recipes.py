"""The CI recipes in docs/ci (and the testing page) parse, and what they name exists: the Dockerfile
they build, the port it exposes, the settings and plugin variables they set, the readiness
path they poll. tests/test_containers.py runs the GitHub recipe's container as written."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from qthumb.app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "docs" / "ci"
PLUGIN_VARIABLES = {"QTHUMB_TEST_URL", "QTHUMB_TEST_API_KEY", "QTHUMB_TEST_MEDIA_DIR"}


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((RECIPES / name).read_text())
    assert isinstance(data, dict)
    return data


def exposed_port() -> str:
    found = re.search(r"^EXPOSE (\d+)$", (ROOT / "docker" / "Dockerfile").read_text(), re.M)
    assert found
    return found.group(1)


def qthumb_variables(text: str) -> set[str]:
    return set(re.findall(r"\b(QTHUMB_[A-Z0-9_]+)\b", text))


def known_variables() -> set[str]:
    return {f"QTHUMB_{name.upper()}" for name in Settings.model_fields} | PLUGIN_VARIABLES


def test_every_variable_the_recipes_set_is_real():
    plugin = (ROOT / "app" / "pytest_plugin.py").read_text()
    assert all(name in plugin for name in PLUGIN_VARIABLES - {"QTHUMB_TEST_MEDIA_DIR"})
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        unknown = qthumb_variables((RECIPES / name).read_text()) - known_variables()
        assert not unknown, (name, unknown)


def test_the_github_recipe():
    jobs = load("github-actions.yml")["jobs"]
    steps = {s.get("name"): s for s in jobs["with-container"]["steps"] if "name" in s}
    build, start = steps["Build qthumb"]["run"], steps["Start qthumb"]["run"]
    dockerfile = re.search(r"-f \.qthumb/(\S+)", build)
    assert dockerfile and (ROOT / dockerfile.group(1)).is_file()
    tag = re.search(r"-t (\S+)", build)
    assert tag and start.split()[-1] == tag.group(1)  # it runs the image it built
    assert f":{exposed_port()}:{exposed_port()}" in start
    assert "/readyz" in steps["Wait until qthumb is ready"]["run"]
    env = jobs["with-container"]["env"]
    assert env["QTHUMB_TEST_URL"].endswith(f":{exposed_port()}")
    assert env["QTHUMB_TEST_API_KEY"] in start  # the key the container accepts
    assert any("--qthumb-workers" in str(s.get("run")) for s in jobs["with-plugin"]["steps"])


def test_the_gitlab_recipe():
    recipe = load("gitlab-ci.yml")
    image = recipe["qthumb-image"]
    pushed = re.search(r'docker push "([^"]+)"', "\n".join(image["script"]))
    assert pushed and any("docker/Dockerfile" in line for line in image["script"])
    (service,) = recipe["tests-with-service"]["services"]
    assert service["name"] == pushed.group(1)  # the service is the image the build job pushes
    url = recipe["tests-with-service"]["variables"]["QTHUMB_TEST_URL"]
    assert url == f"http://{service['alias']}:{exposed_port()}"
    key = recipe["tests-with-service"]["variables"]["QTHUMB_TEST_API_KEY"]
    assert service["variables"]["QTHUMB_API_KEYS"] == key


def test_the_testing_page_shows_the_recipes():
    testing = (ROOT / "docs" / "testing.md").read_text()
    assert "## In your test suite" in testing
    for name in ("github-actions.yml", "gitlab-ci.yml"):
        assert f"docs/ci/{name}" in testing
