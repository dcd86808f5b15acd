"""Serving room."""
