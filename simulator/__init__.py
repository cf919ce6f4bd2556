"""Synthetic payment network that stands in for the card issuer's upstream systems."""
