"""Evaluation room."""
