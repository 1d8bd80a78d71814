"""Reports: sections registered in registry.py, assembled by build.py."""

from .build import build_report, render_terminal, to_json
from .context import ReportContext, ReportOptions
from .registry import section

__all__ = ["ReportContext", "ReportOptions", "build_report", "render_terminal", "section", "to_json"]
