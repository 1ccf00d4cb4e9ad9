"""A self-contained HTML page: inline CSS, every image a base64 `data:` URI, no script, no external file."""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from typing import Any

CSS = """
body { font-family: sans-serif; margin: 2em; color: #222; max-width: 1200px; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 3px 8px; }
th { background: #f2f2f2; text-align: left; } td.num { text-align: right; font-family: monospace; }
.warning { background: #fff3cd; border: 1px solid #e0b000; padding: 0.6em 1em; font-weight: bold; }
figure { margin: 0.6em 0; } figcaption { font-size: 0.9em; color: #555; }
img { max-width: 100%; }
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def image(png: bytes, alt: str) -> str:
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def figure(png: bytes, caption: str) -> str:
    return f"<figure>{image(png, caption)}<figcaption>{esc(caption)}</figcaption></figure>"


def cell(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.3f}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    return f"<td>{esc(value)}</td>"


def table(header: Sequence[str] | None, rows: Sequence[Sequence[Any]]) -> str:
    """A table with a header row (None: rows only, e.g. name / value pairs)."""
    head = "" if header is None else "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def section(title: str, *parts: str) -> str:
    return f"<h2>{esc(title)}</h2>" + "".join(parts)


def paragraph(text: str, css_class: str = "") -> str:
    attr = f' class="{css_class}"' if css_class else ""
    return f"<p{attr}>{esc(text)}</p>"


def page(title: str, body: Sequence[str]) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{esc(title)}</title>'
            f"<style>{CSS}</style></head><body><h1>{esc(title)}</h1>{''.join(body)}</body></html>\n")
