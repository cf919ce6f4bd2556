"""The Redis database the online-store tests use (apart from the stream tests' and prod mode's)."""

REDIS_TEST_DB = 13
