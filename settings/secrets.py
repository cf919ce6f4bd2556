"""Addresses that may carry a password (database, Redis, MLflow URLs), as they may be shown: in
asset metadata, run logs, errors and printed summaries."""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
# Query parameters that carry a credential (`postgresql://host/db?password=...`).
SECRET_PARAMETERS = ("password", "secret", "token", "key")


def redacted(address: str) -> str:
    """`address` with its password and credential parameters masked
    (`postgresql://fraud:***@db:5432/feast`); a path or a URL without one, unchanged."""
    parts = urlsplit(address)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = f"{parts.username or ''}:{MASK}@{netloc.rpartition('@')[2]}"
    query = parts.query
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(_is_secret(name) for name, _ in pairs):
        query = urlencode([(n, MASK if _is_secret(n) else v) for n, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return address
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _is_secret(name: str) -> bool:
    return any(word in name.lower() for word in SECRET_PARAMETERS)
