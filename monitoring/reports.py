"""Evidently reports as files: a snapshot saved as HTML (for people) and JSON (for tools)."""

from pathlib import Path


class SavedReport:
    """A result holding an Evidently `snapshot`, which it saves as files."""

    snapshot: object

    def save(self, folder: Path, name: str) -> tuple[Path, Path]:
        """The report as `<name>.html` and `<name>.json` in `folder`."""
        folder.mkdir(parents=True, exist_ok=True)
        html, json = folder / f"{name}.html", folder / f"{name}.json"
        self.snapshot.save_html(str(html))
        self.snapshot.save_json(str(json))
        return html, json
