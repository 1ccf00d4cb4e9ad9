"""The documentation: the README stays a short entry point, every link in the docs resolves, nothing cites
a document the repository does not ship, and the docs site builds without a warning."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
README_MAX_LINES = 220
# Never scanned for citations: environments and caches anywhere, and at the top level the tests (this file
# names the pattern) and generated output.
SKIP_ANYWHERE = {".venv", ".git", "__pycache__", ".pytest_cache", ".ruff_cache", "node_modules"}
SKIP_TOP = {"tests", ".dvc", "site", "cache", "models", "data", "reports"}

LINK = re.compile(r"(?<!\\)\[(?:[^\]\[]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def markdown_files() -> list[Path]:
    """The Markdown whose links must resolve: the README, every docs page and the benchmarks' README."""
    return [README, *sorted((REPO / "docs").glob("*.md")), REPO / "bench" / "README.md"]


def prose_lines(text: str) -> list[str]:
    """The lines of a Markdown text outside fenced code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def without_code_spans(line: str) -> str:
    return re.sub(r"`[^`]*`", "", line)


def slugify(heading: str) -> str:
    """The anchor Python-Markdown's toc extension (MkDocs) gives a heading; GitHub's matches it for the
    plain headings these pages use."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).replace("`", "")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def anchors(path: Path) -> set[str]:
    return {slugify(m.group(2)) for line in prose_lines(path.read_text(encoding="utf-8"))
            if (m := HEADING.match(line))}


def relative_links(path: Path) -> list[str]:
    return [m.group(1) for line in prose_lines(path.read_text(encoding="utf-8"))
            for m in LINK.finditer(without_code_spans(line))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", m.group(1), re.I)]      # skip http:, mailto:, ...


@pytest.mark.parametrize("page", markdown_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_points_to_a_file_and_heading_that_exist(page: Path) -> None:
    broken = []
    for link in relative_links(page):
        target, _, anchor = link.partition("#")
        file = (page.parent / target).resolve() if target else page
        if not file.exists():
            broken.append(f"{link}: no file {file}")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{link}: no heading with anchor #{anchor} in {file.relative_to(REPO)}")
    assert not broken, f"{page.relative_to(REPO)}: broken links:\n" + "\n".join(broken)


def test_readme_points_to_the_docs_home() -> None:
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in relative_links(README)}
    assert (REPO / "docs" / "index.md").resolve() in linked


def test_readme_is_short() -> None:
    n = len(README.read_text(encoding="utf-8").splitlines())
    assert n <= README_MAX_LINES, f"README.md has {n} lines; move reference material under docs/"


def test_readme_quick_start_holds_the_two_commands_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    section = re.search(r"^## Quick start\s*$(.*?)(?=^## )", text, re.M | re.S)
    assert section, "README.md has no '## Quick start' section"
    block = re.search(r"^```[^\n]*\n(.*?)^```", section.group(1), re.M | re.S)
    assert block, "the Quick start section has no fenced block"
    assert block.group(1).split() == ["make", "demo", "make", "test"], block.group(1)


def scanned_files() -> list[Path]:
    """Every .md, .py, .yaml and .yml file of the repository, outside the skipped folders."""
    found = []
    for root, dirs, files in os.walk(REPO):
        top = Path(root) == REPO
        dirs[:] = [d for d in dirs if d not in SKIP_ANYWHERE and not d.endswith(".egg-info")
                   and not (top and d in SKIP_TOP)]
        found += [Path(root) / f for f in files if f.endswith((".md", ".py", ".yaml", ".yml"))]
    return sorted(found)


def test_nothing_cites_a_spec_document_the_repository_does_not_ship() -> None:
    citation = re.compile(r"\bSPEC\b")
    hits = [f"{path.relative_to(REPO)}:{i}: {line.strip()}"
            for path in scanned_files()
            for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if citation.search(line)]
    assert not hits, ("cite a docs/ page or describe the fact instead of SPEC (not in the repository):\n"
                      + "\n".join(hits))


def test_the_docs_site_builds_without_a_warning(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(REPO / "mkdocs.yml"),
         "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr
