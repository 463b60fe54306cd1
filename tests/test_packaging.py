"""The release's version: pyproject.toml's is the CHANGELOG's newest dated section, so a wheel
says which changes it holds (docs/development.md, "Cutting a release")."""

from __future__ import annotations

import re
import tomllib
from datetime import date
from pathlib import Path

ROOT = Path(__file__).parent.parent
RELEASE = re.compile(r"^## \[(?P<version>\d+\.\d+\.\d+)\] - (?P<date>\d{4}-\d{2}-\d{2})$", re.M)


def test_the_version_is_the_changelogs_newest_release() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    changelog = (ROOT / "CHANGELOG.md").read_text()
    releases = list(RELEASE.finditer(changelog))
    assert releases, "CHANGELOG.md has no '## [x.y.z] - YYYY-MM-DD' section"
    newest = releases[0]
    assert newest["version"] == version, (newest["version"], version)
    date.fromisoformat(newest["date"])
    # Work not yet released sits above it, under [Unreleased].
    assert changelog.index("## [Unreleased]") < newest.start()


def test_no_project_url_names_a_placeholder() -> None:
    """[project.urls] only for a real public home: none exists yet, so none is declared."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    urls = project.get("urls", {})
    assert not any("example" in url or "<" in url for url in urls.values()), urls
