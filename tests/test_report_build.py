"""The run report of a tiny trained run: a self-contained HTML page that headless Chromium renders cleanly."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.report.build import build_report

SECTIONS = ("Dataset and protocol", "Extractor caches used", "Metrics", "Per-class accuracy",
            "Confusion matrix", "Training curves", "most confident test predictions",
            "least confident test predictions")


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: run scripts/bootstrap.sh (it installs Debian's chromium)"
    return found


def screenshot(page: Path, shot: Path) -> str:
    """Render `page` in headless Chromium to `shot`; returns Chromium's log (console messages included)."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--screenshot={shot}", "--window-size=1200,2000", "--enable-logging=stderr", "--v=0",
         page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stderr


@pytest.mark.parametrize("key", ["vaanet", "caan"])
def test_the_report_is_self_contained_and_renders_in_headless_chromium(tiny_run, key: str,
                                                                       tmp_path: Path) -> None:
    page = build_report(dataset="tiny", key=key, report_dir=tiny_run.report_dirs[key],
                        cache_dir=tiny_run.cache_dir, out=tmp_path / "report.html")
    html = page.read_text()
    for title in SECTIONS:
        assert title in html
    assert "random weights" in html and "RANDOM WEIGHTS" in html
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert all(s.startswith("data:image/png;base64,") for s in sources), "nothing outside the page"
    # confusion matrix, one curve figure, a picture per example: 2 test videos, one in each list
    assert len(sources) == 2 + 1 + 1
    log = screenshot(page, tmp_path / "shot.png")
    console = [line for line in log.splitlines() if ":CONSOLE" in line]
    assert not console, console
    pixels = np.asarray(Image.open(tmp_path / "shot.png").convert("L"), np.float32)
    assert pixels.shape == (2000, 1200)
    assert (pixels < 200).mean() > 0.02 and pixels.std() > 20, "the screenshot is blank"
