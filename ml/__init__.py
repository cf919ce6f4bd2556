"""Model and feature code shared by training and serving; no Dagster imports."""
