"""Collectors: everything that produces trace rows (live recording, importers)."""

from pathlib import Path

#: Chrome-trace JSON file names the importer reads (here, so that choosing an input needs no import).
CHROME_TRACE_SUFFIXES = (".json.gz", ".json")


def chrome_traces_in(folder: Path) -> list[Path]:
    """The Chrome-trace JSON files in ``folder`` (a set of rank files, a tensorboard_trace_handler log), sorted."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(CHROME_TRACE_SUFFIXES))
