"""`python -m labeling ...` is `triage review ...` (used by tests that start the server)."""

from labeling.cli import review

review()
