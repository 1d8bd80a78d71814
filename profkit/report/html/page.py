"""The page around the panels: head, inlined stylesheet and script, navigation, embedded JSON.

The file needs nothing else: no network, no CDN, no other file. The report
document is embedded as JSON (``<script type="application/json"
id="profkit-report">``) so the figures can be read back from the page.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from .markup import esc, script_json


@lru_cache(maxsize=None)
def asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def render_page(title: str, subtitle: str, sections: list[tuple[str, str, str]], data: dict | None) -> str:
    """``sections``: (anchor, title, inner html); ``title``/``subtitle`` are plain text."""
    nav = "".join(f'<a href="#{esc(key)}">{esc(name)}</a>' for key, name, _ in sections)
    body = "".join(f'<section class="panel" id="{esc(key)}"><h2>{esc(name)}</h2>{html}</section>'
                   for key, name, html in sections)
    embedded = (f'<script type="application/json" id="profkit-report">{script_json(data)}</script>'
                if data is not None else "")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{asset('report.css')}</style></head>"
        f'<body><header><h1>{esc(title)}</h1><p class="sub">{esc(subtitle)}</p><nav>{nav}</nav></header>'
        f'<main>{body}</main><div id="tip" role="tooltip" hidden></div>'
        f"{embedded}<script>{asset('report.js')}</script></body></html>\n"
    )
