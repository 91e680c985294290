"""The README's Architecture section names every module of the package (and nothing else)."""

from __future__ import annotations

import re

from tests.support.rendering import ROOT


def test_architecture_section_matches_the_tree() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    tree = section.split("```", 2)[1]
    named = set(re.findall(r"([a-z_]+\.py)\b", tree))
    package = ROOT / "airflow_component"
    modules = {p.name for p in package.rglob("*.py")}
    assert modules - named == set(), "modules the README does not show"
    assert named - modules == set(), "the README shows modules that do not exist"
    for folder in ("config/", "parts/"):
        assert folder in tree
