"""Bring your own data: an external transactions table and a column mapping to landing files."""
