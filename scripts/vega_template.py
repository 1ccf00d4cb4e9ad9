"""Write .dvc/plots.html, the page template `dvc plots show` and `dvc plots diff` fill (.dvc/config:
plots.html_template), with Vega, Vega-Lite and Vega-Embed inlined so the plots render offline.

    python scripts/vega_template.py          # needs npm and the npm registry; run it to change a version

DVC's own template loads the three libraries from a CDN, so without internet its page is blank. This one
carries them: the pinned tarballs come from the npm registry (`npm pack`), their sha512 must match the
registry's integrity recorded below, and the built files go into <script> elements. The template leaves out
DVC's `{scripts}` placeholder on purpose: that is where DVC would put its CDN <script> tags. Inlined, not
linked: dvc writes its page to <cwd>/<out>/index.html, wherever the user runs it, so no relative path to a
vendored file would hold, and an inlined page can be copied anywhere.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / ".dvc" / "plots.html"
# The placeholders DVC's HTML.embed replaces anywhere in the template: none may occur in the libraries.
PLACEHOLDERS = ("{plot_divs}", "{scripts}", "{refresh_tag}")


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    integrity: str  # the registry's dist.integrity (`npm view <name>@<version> dist.integrity`)
    build: str  # the browser build inside the tarball

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


# The newest releases of the major versions DVC's own template loads (vega 5, vega-lite 5, vega-embed 6):
# DVC's plot templates are Vega-Lite 5 specs. All three are BSD-3-Clause.
PACKAGES = (
    Package("vega", "5.33.1",
            "sha512-1fArfVDUqVbb5z8n+/nVQb+VNBzx8svY6CrsyTK4Ujm4yrd9I1auoKxBAPXLCavY1LcrbHUskQbGUP8gXOzyQw==",
            "build/vega.min.js"),
    Package("vega-lite", "5.23.0",
            "sha512-l4J6+AWE3DIjvovEoHl2LdtCUkfm4zs8Xxx7INwZEAv+XVb6kR6vIN1gt3t2gN2gs/y4DYTs/RPoTeYAuEg6mA==",
            "build/vega-lite.min.js"),
    Package("vega-embed", "6.29.0",
            "sha512-PmlshTLtLFLgWtF/b23T1OwX53AugJ9RZ3qPE2c01VFAbgt3/GSNI/etzA/GzdrkceXFma+FDHNXUppKuM0U6Q==",
            "build/vega-embed.min.js"),
)

PAGE = """<!DOCTYPE html>
<!-- The page template of `dvc plots show` / `dvc plots diff` (.dvc/config: plots.html_template).
     Written by scripts/vega_template.py; edit that, not this. {versions}, inlined: no network needed. -->
<html>
<head>
<meta charset="utf-8">
{{refresh_tag}}
<title>DVC plots</title>
{licences}
{scripts}
<style>
body {{ font-family: sans-serif; }}
table {{ border-spacing: 15px; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


def fetch(package: Package, into: Path) -> tarfile.TarFile:
    """The package's tarball from the npm registry, checked against the pinned integrity."""
    done = subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(into), package.spec],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"vega_template: npm pack {package.spec} failed: {done.stderr.strip()}")
    tarball = into / done.stdout.strip().splitlines()[-1]
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball.read_bytes()).digest()).decode()
    if digest != package.integrity:
        raise SystemExit(f"vega_template: {package.spec}: tarball {digest}, pinned {package.integrity}")
    return tarfile.open(tarball)


def member(tar: tarfile.TarFile, name: str) -> str | None:
    try:
        f = tar.extractfile(f"package/{name}")
    except KeyError:
        return None
    return f.read().decode("utf-8") if f else None


def script(package: Package, tar: tarfile.TarFile) -> str:
    code = member(tar, package.build)
    if code is None:
        raise SystemExit(f"vega_template: {package.spec} has no {package.build}")
    bad = [p for p in (*PLACEHOLDERS, "</script") if p in code]
    if bad:  # DVC would substitute into the code, or the browser would end the <script> element early
        raise SystemExit(f"vega_template: {package.spec}/{package.build} contains {bad}")
    return f"<script>/* {package.spec} {package.build} */\n{code.strip()}\n</script>"


def licence(package: Package, tar: tarfile.TarFile) -> str:
    text = member(tar, "LICENSE")
    if text is None:  # vega's tarball ships none; its package.json and repository say BSD-3-Clause
        text = ("BSD-3-Clause (its package.json; the tarball ships no LICENSE file): the terms printed for "
                "vega-lite below, same holder, the University of Washington Interactive Data Lab "
                "(https://github.com/vega/vega).")
    return f"<!-- {package.spec}:\n{text.strip().replace('--', '- -')}\n-->"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tars = [fetch(p, Path(tmp)) for p in PACKAGES]
        page = PAGE.format(
            versions=", ".join(p.spec for p in PACKAGES),
            licences="\n".join(licence(p, t) for p, t in zip(PACKAGES, tars, strict=True)),
            scripts="\n".join(script(p, t) for p, t in zip(PACKAGES, tars, strict=True)),
        )
    OUT.write_text(page, encoding="utf-8")
    print(f"wrote {OUT.relative_to(REPO)} ({OUT.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
