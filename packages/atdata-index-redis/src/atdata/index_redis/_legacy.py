"""Reading indexes written by the first layout (one entry per CID, one name per entry).

That layout kept ``entry:<cid>`` hashes (``name``, ``content`` JSON with the metadata,
``seq``, ``created_at``), ``name:<name>`` strings, ``versions:<name>`` sorted sets and an
``entries`` set. An index still holding them would look empty to this version, and an
empty-looking index is how gc comes to delete live shards; so the first use of an index
converts them, once, in one atomic script: every old entry becomes one version of its
name, with its metadata, its sequence number and its content record.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from ._entry import _text, content_json

__all__ = ["MIGRATE", "legacy_rows"]

log = logging.getLogger(__name__)

# KEYS[1]: the old entries set. ARGV: base, then per entry cid, name, seq, created_at,
# content (JSON), metadata (JSON). Writes the new keys and deletes the old ones; does
# nothing when another client converted the index first. Returns how many it converted.
MIGRATE = """
local B = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local n = 0
for i = 2, #ARGV, 6 do
  local cid, name, seq = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  redis.call('HSET', B .. 'content:' .. cid, 'content', ARGV[i + 4], 'created_at', ARGV[i + 3])
  redis.call('SADD', B .. 'contents', cid)
  redis.call('ZADD', B .. 'history:' .. name, seq, cid)
  redis.call('HSET', B .. 'named:' .. name, cid, ARGV[i + 5])
  redis.call('ZADD', B .. 'users:' .. cid, seq, name)
  redis.call('SADD', B .. 'names', name)
  redis.call('DEL', B .. 'entry:' .. cid, B .. 'name:' .. name, B .. 'versions:' .. name)
  n = n + 1
end
redis.call('DEL', KEYS[1])
return n
"""


def legacy_rows(client: Any, base: str) -> list[str]:
    """The MIGRATE arguments for every old entry (empty when there is no old layout)."""
    rows: list[str] = []
    for cid in client.smembers(f"{base}entries"):
        name, content, seq, created_at = client.hmget(
            f"{base}entry:{_text(cid)}", "name", "content", "seq", "created_at"
        )
        if name is None or content is None:
            continue  # listed but gone: nothing to keep
        old = json.loads(content)
        new_content = content_json(old["cid"], old["schema_ref"], old["data_urls"])
        rows += [old["cid"], _text(name), _text(seq or 0), _text(created_at or ""), new_content]
        rows.append(json.dumps(old.get("metadata")))
    return rows
