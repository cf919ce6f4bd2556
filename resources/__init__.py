"""Dagster resources per environment (`build_resources`, in `resources.environment`)."""

from resources.environment import build_resources

__all__ = ["build_resources"]
