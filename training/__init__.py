"""Training room."""
