"""The Lua scripts behind every multi-key change of a LocalIndex.

Each write that touches several keys (a name's versions, the content record, the
listing sets) runs as one script: Redis executes a script atomically, so no client,
crash or concurrent writer ever sees a name pointing at missing content, or content
whose last name is gone. A script also decides and writes in one round trip, where
WATCH/MULTI/EXEC would need three. All keys of an index share one hash tag
(``{prefix}``), so every script stays inside one cluster slot; ``KEYS[1]`` is always
one of them so that cluster clients route the call.

Names are pointers, content is stored once. Key layout under the base
``B = "{" + key_prefix + "}"`` (the package README has the table):
``B..'names'`` set of every name; ``B..'history:'..name`` sorted set (the name's
versions: CIDs by sequence number, newest highest); ``B..'named:'..name`` hash
(CID -> that version's metadata, JSON); ``B..'content:'..cid`` hash (``content``
JSON ``{cid, schema_ref, data_urls}``, ``created_at``); ``B..'users:'..cid`` sorted
set (the names having this CID as a version, by when they took it);
``B..'contents'`` set of every CID; ``B..'seq'`` counter; ``B..'id'`` the index id;
``B..'schema:'..name..'@'..version`` string (JSON record), ``B..'schemas'`` set of
``name@version``, ``B..'schema_versions:'..name`` set.

Scripts return an entry as ``{name, content, metadata}`` (JSON strings for the last
two); the client builds ``LocalDatasetEntry`` from them.
"""

from __future__ import annotations

__all__ = [
    "ADD",
    "DESCRIBE_SCHEMA",
    "FETCH_CONTENTS",
    "GET_BY_CID",
    "GET_BY_NAME",
    "INDEX_ID",
    "LIST_NAMES",
    "PUBLISH_SCHEMA",
    "REMOVE",
    "RENAME",
    "SET_METADATA",
    "VERSIONS",
]

# Shared helpers, prepended to the scripts that need them.
_HELPERS = """
local B = ARGV[1]
local unpack = unpack or table.unpack
local function newest(name)
  return redis.call('ZREVRANGE', B .. 'history:' .. name, 0, 0)[1]
end
local function entry(name, cid)
  return {name, redis.call('HGET', B .. 'content:' .. cid, 'content'), redis.call('HGET', B .. 'named:' .. name, cid)}
end
-- Make cid the newest version of name. meta: that version's metadata (JSON), or nil to
-- keep what the name already recorded for cid ('null' for a version new to the name).
local function attach(name, cid, meta)
  if newest(name) ~= cid then
    local seq = redis.call('INCR', B .. 'seq')
    redis.call('ZADD', B .. 'history:' .. name, seq, cid)
    redis.call('ZADD', B .. 'users:' .. cid, 'NX', seq, name)
  end
  local nkey = B .. 'named:' .. name
  if meta then
    redis.call('HSET', nkey, cid, meta)
  else
    redis.call('HSETNX', nkey, cid, 'null')
  end
  redis.call('SADD', B .. 'names', name)
end
-- Take cid out of name's versions. The name then resolves to its previous version, or
-- is gone when it had none; the content goes when no other name has it as a version.
local function detach(name, cid)
  local hkey = B .. 'history:' .. name
  redis.call('ZREM', hkey, cid)
  redis.call('HDEL', B .. 'named:' .. name, cid)
  if redis.call('EXISTS', hkey) == 0 then redis.call('SREM', B .. 'names', name) end
  local ukey = B .. 'users:' .. cid
  redis.call('ZREM', ukey, name)
  if redis.call('EXISTS', ukey) == 0 then
    redis.call('DEL', B .. 'content:' .. cid)
    redis.call('SREM', B .. 'contents', cid)
  end
end
-- The (name, cid) an argument pair denotes. mode 'entry': exactly name a's version b.
-- mode 'key': a CID (when content has it) else a name's newest version. Returns name, cid;
-- or nil, users when the CID is shared by several names (the caller must say which).
local function target(mode, a, b)
  if mode == 'entry' then
    if redis.call('ZSCORE', B .. 'history:' .. a, b) then return a, b end
    return nil, nil
  end
  if redis.call('EXISTS', B .. 'content:' .. a) == 1 then
    local users = redis.call('ZRANGE', B .. 'users:' .. a, 0, -1)
    if #users == 1 then return users[1], a end
    return nil, users
  end
  local cid = newest(a)
  if cid then return a, cid end
  return nil, nil
end
"""

# ARGV: base, cid, name, content (JSON), metadata (JSON, or '' to keep the stored one),
# created_at. Returns the entry.
ADD = (
    _HELPERS
    + """
local cid, name = ARGV[2], ARGV[3]
local ckey = B .. 'content:' .. cid
if redis.call('HSETNX', ckey, 'content', ARGV[4]) == 1 then
  redis.call('HSET', ckey, 'created_at', ARGV[6])
  redis.call('SADD', B .. 'contents', cid)
end
local meta = ARGV[5]
if meta == '' then meta = nil end
attach(name, cid, meta)
return entry(name, cid)
"""
)

# ARGV: base, name, cid, metadata (JSON). Replaces the metadata of that one version, if the
# name still has it (else false: nothing is created). Returns the entry.
SET_METADATA = (
    _HELPERS
    + """
local name, cid = ARGV[2], ARGV[3]
if redis.call('HEXISTS', B .. 'named:' .. name, cid) == 0 then return false end
redis.call('HSET', B .. 'named:' .. name, cid, ARGV[4])
return entry(name, cid)
"""
)

# ARGV: base, mode, a, b, new name (see ``target``). Returns {'ok', entry...},
# {'shared', names...} or false when nothing matches.
RENAME = (
    _HELPERS
    + """
local name, cid = target(ARGV[2], ARGV[3], ARGV[4])
if not name then
  if cid then return {'shared', unpack(cid)} end
  return false
end
local new = ARGV[5]
if new == name then
  attach(name, cid, nil)
else
  attach(new, cid, redis.call('HGET', B .. 'named:' .. name, cid))  -- first: detach may drop the content
  detach(name, cid)
end
return {'ok', unpack(entry(new, cid))}
"""
)

# ARGV: base, mode, a, b (see ``target``). Returns {'ok', name, cid}, {'shared', names...}
# or false when nothing matches.
REMOVE = (
    _HELPERS
    + """
local name, cid = target(ARGV[2], ARGV[3], ARGV[4])
if not name then
  if cid then return {'shared', unpack(cid)} end
  return false
end
detach(name, cid)
return {'ok', name, cid}
"""
)

# KEYS[1]: the name's history. ARGV: base, name. The newest entry, or false.
GET_BY_NAME = (
    _HELPERS
    + """
local cid = newest(ARGV[2])
if not cid then return false end
return entry(ARGV[2], cid)
"""
)

# KEYS[1]: the content key. ARGV: base, cid. The entry of the first name that took this
# content and still has it, or false.
GET_BY_CID = (
    _HELPERS
    + """
local first = redis.call('ZRANGE', B .. 'users:' .. ARGV[2], 0, 0)[1]
if not first then return false end
return entry(first, ARGV[2])
"""
)

# KEYS[1]: the name's history. ARGV: base, name. Every version as an entry, newest first.
VERSIONS = (
    _HELPERS
    + """
local out = {}
for _, cid in ipairs(redis.call('ZREVRANGE', KEYS[1], 0, -1)) do
  out[#out + 1] = entry(ARGV[2], cid)
end
return out
"""
)

# KEYS[1]: the names set. ARGV: base, SSCAN cursor, COUNT. One SSCAN step and the newest
# entry of each name it returned: {next cursor, JSON array of [name, content, metadata]}
# (a name removed meanwhile is left out). One round trip and one json.loads per batch:
# three RESP values and two json.loads per entry, or the names sent back, cost 1.6x that.
LIST_NAMES = (
    _HELPERS
    + """
local step = redis.call('SSCAN', KEYS[1], ARGV[2], 'COUNT', ARGV[3])
local out = {}
for _, name in ipairs(step[2]) do
  local cid = newest(name)
  local content = cid and redis.call('HGET', B .. 'content:' .. cid, 'content')
  if content then
    local meta = redis.call('HGET', B .. 'named:' .. name, cid) or 'null'
    out[#out + 1] = '[' .. cjson.encode(name) .. ',' .. content .. ',' .. meta .. ']'
  end
end
return {step[1], '[' .. table.concat(out, ',') .. ']'}
"""
)

# KEYS[1]: the contents set. ARGV: base, CIDs. {content, names...} per CID (false for
# one removed meanwhile), names in the order they took the content.
FETCH_CONTENTS = """
local B = ARGV[1]
local unpack = unpack or table.unpack
local out = {}
for i = 2, #ARGV do
  local content = redis.call('HGET', B .. 'content:' .. ARGV[i], 'content')
  if content then
    out[#out + 1] = {content, unpack(redis.call('ZRANGE', B .. 'users:' .. ARGV[i], 0, -1))}
  else
    out[#out + 1] = false
  end
end
return out
"""

# KEYS[1]: the id key. ARGV: base, a fresh id. The index id: created by the first caller, kept.
INDEX_ID = """
if redis.call('SET', KEYS[1], ARGV[2], 'NX') then return ARGV[2] end
return redis.call('GET', KEYS[1])
"""

# KEYS[1]: a schema key. ARGV: base, the record read, the record to store. Replaces it only
# if it is still the one read (a description added to a published version); 1 if replaced.
DESCRIBE_SCHEMA = """
if redis.call('GET', KEYS[1]) ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[3])
return 1
"""

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
