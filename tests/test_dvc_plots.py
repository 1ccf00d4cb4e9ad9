"""`dvc plots show` and `dvc plots diff` pages render offline: the repository's .dvc/config points DVC at
.dvc/plots.html, which carries Vega, Vega-Lite and Vega-Embed (scripts/vega_template.py). Real plots from
a tiny DVC project, rendered in headless Chromium with every host name unresolvable."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / ".dvc" / "plots.html"
PLOTS = """\
plots:
  - live:
      x: step
  - confusion.json:
      template: confusion
      x: predicted
      y: actual
"""
CONFUSION = ('[{"actual": "joy", "predicted": "joy"}, {"actual": "anger", "predicted": "joy"},'
             ' {"actual": "anger", "predicted": "anger"}]')


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "chromium is not installed: run scripts/bootstrap.sh (it installs Debian's chromium)"
    return found


def render(page: Path, profile: Path) -> tuple[str, str]:
    """(the DOM after the page's scripts ran, Chromium's log) with no network: every host name fails to
    resolve and the proxy is a closed port, so only what the file itself holds can load."""
    done = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={profile}", "--host-resolver-rules=MAP * ~NOTFOUND",
         "--proxy-server=http://127.0.0.1:9", "--enable-logging=stderr", "--v=0",
         "--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def drawn(dom: str) -> list[str]:
    """The Vega canvases that were drawn (vega-embed sizes each one to its chart)."""
    return [m for m in re.findall(r'<canvas width="(\d+)" height="(\d+)"[^>]*class="marks"', dom)
            if int(m[0]) > 0 and int(m[1]) > 0]


def test_the_template_carries_the_libraries_and_no_cdn_tag() -> None:
    html = TEMPLATE.read_text(encoding="utf-8")
    assert html.count("{plot_divs}") == 1
    assert "{scripts}" not in html, "DVC would insert its CDN <script> tags there"
    for name in ("vega@5", "vega-lite@5", "vega-embed@6"):
        assert f"<script>/* {name}" in html
    assert not re.search(r"<script[^>]*\bsrc=", html), "every script is inline"
    assert re.search(r"^\s*html_template = plots.html\s*$", (REPO / ".dvc/config").read_text(), re.M)


@pytest.fixture(scope="module")
def project(module_tmp: Callable[[str], Path]) -> Path:
    """A DVC project with a training curve (like train@'s live/ folder) and a confusion plot (evaluate@)."""
    root = module_tmp("plots")
    run(["git", "init", "-q"], root)
    run(["dvc", "init", "-q"], root)
    (root / "live").mkdir()
    (root / "live" / "loss.tsv").write_text("step\tloss\n0\t1.0\n1\t0.6\n2\t0.4\n")
    (root / "confusion.json").write_text(CONFUSION)
    (root / "dvc.yaml").write_text(PLOTS)
    return root


def test_dvc_plots_pages_render_without_network(project: Path, tmp_path: Path) -> None:
    # DVC's own template first: blank offline, which shows that this test can tell (its scripts come from
    # a CDN that the render cannot reach)
    run(["dvc", "plots", "show", "-o", "cdn_plots"], project)
    dom, log = render(project / "cdn_plots" / "index.html", tmp_path / "p0")
    assert not drawn(dom) and "vegaEmbed is not defined" in log

    # the repository's configuration: `dvc plots show` as a user runs it, into ./dvc_plots
    for name in ("config", "plots.html"):
        shutil.copy2(REPO / ".dvc" / name, project / ".dvc" / name)
    run(["dvc", "plots", "show"], project)
    dom, log = render(project / "dvc_plots" / "index.html", tmp_path / "p1")
    assert len(drawn(dom)) == 2, dom[-3000:]
    assert "Uncaught" not in log, log

    # `dvc plots diff`: the committed curve against the workspace's, run from a subfolder into another
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "plots"], project)
    (project / "live" / "loss.tsv").write_text("step\tloss\n0\t0.9\n1\t0.5\n2\t0.2\n")
    (project / "sub").mkdir()
    out = tmp_path / "elsewhere"
    run(["dvc", "plots", "diff", "HEAD", "-o", str(out)], project / "sub")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert '"rev": "HEAD"' in html and '"rev": "workspace"' in html
    dom, log = render(out / "index.html", tmp_path / "p2")
    assert len(drawn(dom)) == 2, dom[-3000:]
    assert "Uncaught" not in log, log
