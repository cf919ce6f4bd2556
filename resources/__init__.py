"""Dagster resources per environment (`build_resources`, in `resources.environment`). Imported
lazily, so that Dagster-free code (serving) can read `resources.settings` without Dagster."""


def __getattr__(name: str):
    if name == "build_resources":
        from resources.environment import build_resources

        return build_resources
    raise AttributeError(f"module 'resources' has no attribute {name!r}")
