"""Collectors: everything that produces trace rows (live recording, importers)."""

#: Chrome-trace JSON file names the importer reads (here, so that choosing an input needs no import).
CHROME_TRACE_SUFFIXES = (".json.gz", ".json")
