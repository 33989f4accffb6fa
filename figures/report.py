"""``report.html``: one page with every figure and its key numbers as tables, beside the images in the output folder.

The page links its images by relative paths (or embeds them when no browser-readable format was written), loads
nothing from the network and runs no script, so the output folder can be zipped and shared. Tables are the figures'
own DataFrames (the same numbers as the CSVs) rendered by :meth:`pandas.DataFrame.to_html` with escaping on.
"""

from __future__ import annotations

import base64
import datetime
import html
import pathlib
import platform
import re
import urllib.parse
from dataclasses import dataclass, field

import pandas as pd

from .style import write_bytes_atomic

#: Image formats a browser shows, in order of preference.
WEB_FORMATS = ("png", "svg", "jpg")

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2.2em; border-bottom: 1px solid #ccc; }
h3 { font-size: 1em; margin-bottom: 0.3em; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
code { background: #f4f4f4; padding: 0.1em 0.3em; }
table.data { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1em; }
table.data th, table.data td { border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }
table.data th { background: #f4f4f4; }
.note { color: #8a4b00; } .meta { color: #666; font-size: 0.9em; }
nav ul { columns: 2; }
"""


@dataclass
class ReportEntry:
    """One figure as the report shows it.

    Attributes
    ----------
    name, description : str
    command : str
        The command that makes this figure alone.
    commands : tuple of str
        Other toolkit commands reproducing its key numbers.
    files : list of pathlib.Path
        Files written for it (images, CSV), linked from the report.
    image : str or None
        File name (relative to the report) of the image shown; None to embed ``image_png``.
    image_png : bytes or None
        PNG bytes embedded when no browser-readable image file was written.
    tables : dict of str to DataFrame
        The key numbers, ``{title: table}``.
    seconds : float
        Wall time to make the figure.
    """

    name: str
    description: str
    command: str
    commands: tuple[str, ...] = ()
    files: list[pathlib.Path] = field(default_factory=list)
    image: str | None = None
    image_png: bytes | None = None
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    seconds: float = float("nan")


def table_id(name: str, index: int) -> str:
    """The HTML id of the ``index``-th table of figure ``name`` (``table-<name>-<index>``)."""
    return f"table-{re.sub(r'[^A-Za-z0-9_-]', '-', name)}-{index}"


def _format_number(x) -> str:
    return f"{x:.6g}"


def _table_html(frame: pd.DataFrame, ident: str) -> str:
    return frame.to_html(index=False, escape=True, na_rep="—", float_format=_format_number, border=0,
                         classes="data", table_id=ident)


def _entry_html(entry: ReportEntry) -> str:
    e = html.escape
    parts = [f'<section id="fig-{e(entry.name)}">', f"<h2>{e(entry.name)}</h2>", f"<p>{e(entry.description)}</p>"]
    if entry.image is not None:
        src = urllib.parse.quote(entry.image)
    else:
        src = "data:image/png;base64," + base64.b64encode(entry.image_png or b"").decode("ascii")
    parts.append(f'<p><img src="{e(src, quote=True)}" alt="{e(entry.name, quote=True)}"></p>')
    links = " · ".join(f'<a href="{e(urllib.parse.quote(p.name), quote=True)}">{e(p.name)}</a>' for p in entry.files)
    parts.append(f'<p class="meta">Files: {links} — made in {entry.seconds:.1f} s</p>')
    parts.append(f"<p>Reproduce: <code>{e(entry.command)}</code></p>")
    if entry.commands:
        items = "".join(f"<li><code>{e(c)}</code></li>" for c in entry.commands)
        parts.append(f"<p>Related commands:</p><ul>{items}</ul>")
    for i, (title, frame) in enumerate(entry.tables.items()):
        parts.append(f"<h3>{e(title)}</h3>")
        parts.append(_table_html(frame, table_id(entry.name, i)))
    parts.append("</section>")
    return "\n".join(parts)


def render_report(entries: list[ReportEntry], *, skipped: dict[str, str] | None = None,
                  failed: dict[str, str] | None = None, quick: bool = False, elapsed: float = float("nan"),
                  command: str = "python -m figures") -> str:
    """The HTML text of the report (see the module docstring)."""
    e = html.escape
    skipped, failed = skipped or {}, failed or {}
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    head = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            "<title>sigprop-theory figures</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
            "<h1>sigprop-theory: figures and key numbers</h1>",
            f'<p class="meta">Made by <code>{e(command)}</code> on {e(when)} (Python '
            f"{e(platform.python_version())}) in {elapsed:.1f} s. Every table is the figure's own data; the CSV "
            "beside each image holds every plotted number.</p>"]
    if quick:
        head.append('<p class="note">Made with <code>--quick</code>: reduced grids and samples, for a first look '
                    "and for tests. Run without it for the figures of record.</p>")
    if skipped:
        items = "".join(f"<li><b>{e(n)}</b>: {e(msg)}</li>" for n, msg in skipped.items())
        head.append(f'<div id="skipped"><h2>Skipped figures</h2><ul class="note">{items}</ul></div>')
    if failed:
        items = "".join(f"<li><b>{e(n)}</b>: {e(msg)}</li>" for n, msg in failed.items())
        head.append(f'<div id="failed"><h2>Failed figures</h2><ul class="note">{items}</ul></div>')
    nav = "".join(f'<li><a href="#fig-{e(x.name, quote=True)}">{e(x.name)}</a></li>' for x in entries)
    head.append(f"<nav><ul>{nav}</ul></nav>")
    body = [_entry_html(x) for x in entries]
    return "\n".join([*head, *body, "</body>", "</html>", ""])


def write_report(out_dir: str | pathlib.Path, entries: list[ReportEntry], **kwargs) -> pathlib.Path:
    """Write ``out_dir/report.html`` atomically; keyword arguments as :func:`render_report`."""
    return write_bytes_atomic(pathlib.Path(out_dir) / "report.html", render_report(entries, **kwargs).encode())
