"""Backend URLs that carry a password are shown masked (metadata, logs, errors) and reach Feast's
Redis client whole."""

from urllib.parse import quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.store import feast_settings, redis_connection_string
from settings.secrets import MASK, redacted

pytestmark = pytest.mark.unit

passwords = st.text(
    st.characters(codec="ascii", exclude_categories=["Cc"], exclude_characters=","),
    min_size=6,
    max_size=30,
).filter(lambda p: p.strip() == p and MASK not in p)


@given(passwords)
def test_a_password_in_a_url_is_masked_and_the_rest_kept(password):
    for template in (
        "postgresql://fraud:{}@db.internal:5432/feast",
        "redis://:{}@redis.internal:6379/0",
        "postgresql://db.internal/feast?sslmode=require&password={}",
    ):
        assert redacted(template.format(quote(password, safe=""))) == template.format(MASK)


@pytest.mark.parametrize(
    "address",
    ["/srv/feast/registry.db", "sqlite:////tmp/mlflow.db", "redis://127.0.0.1:6379/0",
     "http://mlflow.internal:5000", "postgresql://fraud@db:5432/feast?sslmode=require"],
)  # fmt: skip
def test_an_address_without_a_password_is_shown_as_it_is(address):
    assert redacted(address) == address


@given(passwords, st.integers(0, 15))
def test_feast_gets_the_redis_password_decoded_and_the_database(password, db):
    url = f"redis://:{quote(password, safe='')}@cache.internal:6380/{db}"
    assert redis_connection_string(url) == f"cache.internal:6380,db={db},password={password}"


@pytest.mark.parametrize(
    "url, expected",
    [
        ("redis://127.0.0.1:6379", "127.0.0.1:6379"),
        ("redis://127.0.0.1:6379,db=12", "127.0.0.1:6379,db=12"),  # Feast's own options
        ("rediss://u:s3cret@cache:6390", "cache:6390,username=u,password=s3cret,ssl=true"),
        ("redis://cache", "cache:6379"),
    ],
)  # fmt: skip
def test_redis_urls_become_feast_connection_strings(url, expected):
    assert redis_connection_string(url) == expected


def test_a_refused_online_store_setting_does_not_echo_its_password():
    with pytest.raises(ValueError) as refused:
        feast_settings("registry.db", "memcached://:hunter2-secret@cache:11211")
    assert "hunter2-secret" not in str(refused.value) and "cache:11211" in str(refused.value)
