"""What goes on the wire to Redis for `RedisSessionStore`: its Lua scripts, the session encoding
(sealed by the store before it leaves), and descriptions of the server that never show a password.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from .base import QlikSession

__all__ = [
    "GET_SLIDING",
    "INDEX_PRUNE",
    "INDEX_TOUCH",
    "RELEASE",
    "RedisClient",
    "decode_session",
    "describe_client",
    "describe_url",
    "encode_session",
    "key_digest",
]

RedisClient = aioredis.Redis | RedisCluster

# GET that slides the key's TTL by the ttl written in front of the value, in one round trip.
GET_SLIDING = """
local v = redis.call('GET', KEYS[1])
if not v then return false end
local sep = string.find(v, ':', 1, true)
local ttl = sep and tonumber(string.sub(v, 1, sep - 1))
if ttl and ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return v
"""

# Optionally add an index entry, then extend (never shorten) the index TTL to ARGV[1] ms.
INDEX_TOUCH = """
if #ARGV >= 3 then redis.call('HSET', KEYS[1], ARGV[2], ARGV[3]) end
local cur = redis.call('PTTL', KEYS[1])
if cur == -2 then return 0 end
if cur < tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 1
"""

# Remove index entries only if they still hold what the caller saw (a concurrent set re-seals).
INDEX_PRUNE = """
local n = 0
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    n = n + redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return n
"""

# Release a lock only if it is still ours: after lock_timeout another owner may hold it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def key_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:32]


def describe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    return f"{parts.hostname or 'localhost'}:{port}"


def describe_client(client: RedisClient) -> str:
    if isinstance(client, RedisCluster):
        # Before the first command only the startup nodes are known.
        nodes = sorted(client.nodes_manager.startup_nodes)
        return f"cluster via {nodes[0]}" if nodes else "cluster"
    pool = client.connection_pool
    service = getattr(pool, "service_name", None)
    if service:
        return f"Sentinel service {service!r}"
    kwargs = pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"


def encode_session(session: QlikSession) -> bytes:
    doc: dict[str, str | float] = {
        "n": session.cookie_name,
        "v": session.cookie_value,
        "u": session.user_key,
        "c": session.created_at,
    }
    if session.fingerprint:
        doc["a"] = session.fingerprint
    if session.expires_at is not None:
        doc["e"] = session.expires_at
    return json.dumps(doc, separators=(",", ":")).encode("utf-8")


def decode_session(data: bytes) -> QlikSession | None:
    try:
        doc = json.loads(data)
        session = QlikSession(
            cookie_name=doc["n"],
            cookie_value=doc["v"],
            user_key=doc["u"],
            created_at=doc["c"],
            fingerprint=doc.get("a", ""),  # absent in values written before attributes counted
            expires_at=doc.get("e"),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all(isinstance(v, str) for v in (doc["n"], doc["v"], doc["u"], session.fingerprint)):
        return None
    expires = session.expires_at
    if expires is not None and (isinstance(expires, bool) or not isinstance(expires, int | float)):
        return None
    return session
