"""Collectors: everything that produces trace rows (live recording, importers)."""
