"""atdata.index_redis: Redis-backed LocalIndex (being written, issue 3)."""
