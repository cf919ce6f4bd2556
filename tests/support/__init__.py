"""Builders, constants and helpers the test modules share (fixtures: tests/conftest.py)."""
