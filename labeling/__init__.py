"""Labeling room."""
