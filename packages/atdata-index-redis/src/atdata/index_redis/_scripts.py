"""The Lua scripts behind every multi-key change of a LocalIndex.

Each write that touches several keys (entry hash, name pointer, version list, listing
set) runs as one script: Redis executes a script atomically, so no client, crash or
concurrent writer ever sees a name pointing at a missing entry. A script also decides
and writes in one round trip, where WATCH/MULTI/EXEC would need three. All keys of an
index share one hash tag (``{prefix}``), so every script stays inside one cluster slot;
``KEYS[1]`` is always one of them so that cluster clients route the call.

Key layout under the base ``B = "{" + key_prefix + "}"`` (see the package README):
``B..'entry:'..cid`` hash (``name``, ``content`` JSON, ``seq``, ``created_at``),
``B..'name:'..name`` string (newest CID),
``B..'versions:'..name`` sorted set (CID by sequence number), ``B..'entries'`` set,
``B..'seq'`` counter, ``B..'schema:'..name..'@'..version`` string (JSON record),
``B..'schemas'`` set of ``name@version``, ``B..'schema_versions:'..name`` set.
"""

from __future__ import annotations

__all__ = ["ADD", "ENTRY_FIELDS", "FETCH", "GET_BY_NAME", "PUBLISH_SCHEMA", "REMOVE", "RENAME"]

# What an entry read returns, in this order. ``content`` is one JSON object (cid,
# schema_ref, data_urls, metadata) written by the client: reading an entry is two
# values to parse, not five, which is what makes listing fast.
ENTRY_FIELDS = ("name", "content")
_HMGET = "'HMGET', B .. 'entry:' .. cid, 'name', 'content'"

# Shared helpers, prepended to the scripts that need them.
_HELPERS = """
local B = ARGV[1]
-- CID if an entry has that key, else the CID the name points at (false if neither).
local function resolve(key)
  if redis.call('EXISTS', B .. 'entry:' .. key) == 1 then return key end
  return redis.call('GET', B .. 'name:' .. key)
end
-- Take cid out of name's versions; the name falls back to its previous version, or goes.
local function detach(cid, name)
  local vkey = B .. 'versions:' .. name
  local nkey = B .. 'name:' .. name
  redis.call('ZREM', vkey, cid)
  if redis.call('GET', nkey) == cid then
    local top = redis.call('ZREVRANGE', vkey, 0, 0)
    if top[1] then redis.call('SET', nkey, top[1]) else redis.call('DEL', nkey) end
  end
end
-- Make cid the newest version of name.
local function attach(cid, name)
  local seq = redis.call('INCR', B .. 'seq')
  redis.call('HSET', B .. 'entry:' .. cid, 'name', name, 'seq', seq)
  redis.call('ZADD', B .. 'versions:' .. name, seq, cid)
  redis.call('SET', B .. 'name:' .. name, cid)
end
-- True when cid already is the newest entry under name.
local function is_newest(cid, name)
  return redis.call('HGET', B .. 'entry:' .. cid, 'name') == name
     and redis.call('GET', B .. 'name:' .. name) == cid
end
"""

# ARGV: base, cid, name, content (JSON), '1' to (re)write the content (metadata given),
# created_at. Returns the stored content (JSON): the caller knows the rest.
ADD = (
    _HELPERS
    + """
local cid, name = ARGV[2], ARGV[3]
local ekey = B .. 'entry:' .. cid
local old = redis.call('HGET', ekey, 'name')
if not old then  -- new content, the common case: one HSET for every field
  local seq = redis.call('INCR', B .. 'seq')
  redis.call('HSET', ekey, 'name', name, 'content', ARGV[4], 'seq', seq, 'created_at', ARGV[6])
  redis.call('ZADD', B .. 'versions:' .. name, seq, cid)
  redis.call('SET', B .. 'name:' .. name, cid)
  redis.call('SADD', B .. 'entries', cid)
  return ARGV[4]
end
if ARGV[5] == '1' then redis.call('HSET', ekey, 'content', ARGV[4]) end
if not is_newest(cid, name) then
  detach(cid, old)
  attach(cid, name)
end
return redis.call('HGET', ekey, 'content')
"""
)

# ARGV: base, cid-or-name, new name. Returns ENTRY_FIELDS, or false when nothing matches.
RENAME = (
    _HELPERS
    + """
local cid = resolve(ARGV[2])
if not cid then return false end
local name = ARGV[3]
if not is_newest(cid, name) then
  detach(cid, redis.call('HGET', B .. 'entry:' .. cid, 'name'))
  attach(cid, name)
end
return redis.call("""
    + _HMGET
    + """)
"""
)

# ARGV: base, cid-or-name. Returns the removed CID, or false when nothing matches.
REMOVE = (
    _HELPERS
    + """
local cid = resolve(ARGV[2])
if not cid then return false end
local ekey = B .. 'entry:' .. cid
detach(cid, redis.call('HGET', ekey, 'name'))
redis.call('DEL', ekey)
redis.call('SREM', B .. 'entries', cid)
return cid
"""
)

# KEYS[1]: the entries set. ARGV: base, CIDs. ENTRY_FIELDS of each CID, flat, in order
# (false, false for a CID removed meanwhile): one command per listing batch.
FETCH = """
local B = ARGV[1]
local out = {}
for i = 2, #ARGV do
  local values = redis.call('HMGET', B .. 'entry:' .. ARGV[i], 'name', 'content')
  out[#out + 1] = values[1]
  out[#out + 1] = values[2]
end
return out
"""

# KEYS[1]: the name key. ARGV: base. One round trip for name -> CID -> ENTRY_FIELDS.
GET_BY_NAME = (
    """
local B = ARGV[1]
local cid = redis.call('GET', KEYS[1])
if not cid then return false end
return redis.call("""
    + _HMGET
    + """)
"""
)

# ARGV: base, name, version, record (JSON). Stores the record unless that version exists;
# returns false when stored, else the record already there (the caller compares fields).
PUBLISH_SCHEMA = """
local B, name, version = ARGV[1], ARGV[2], ARGV[3]
local key = B .. 'schema:' .. name .. '@' .. version
local existing = redis.call('GET', key)
if existing then return existing end
redis.call('SET', key, ARGV[4])
redis.call('SADD', B .. 'schemas', name .. '@' .. version)
redis.call('SADD', B .. 'schema_versions:' .. name, version)
return false
"""
