/**
 * Lua scripts of the Redis broker. Each runs atomically in Redis, so appending to history and
 * publishing to the channel's pub/sub channel happen as one step: a node that subscribed and
 * then read history sees every publication exactly once (history ∪ live), in offset order.
 *
 * Keys of a channel (both share the `{channel}` hash tag so they live in one cluster slot):
 * - meta hash `<prefix>m:{<channel>}`: `e` epoch, `o` offset of the newest publication.
 * - history stream `<prefix>s:{<channel>}`: one entry per kept publication, id `<offset>-0`,
 *   fields `t` time ms, `x` expiry ms (0 = never), `f` JSON of the optional fields, `d` payload.
 *
 * A channel's epoch is created with its meta hash (from a candidate passed in by the caller,
 * since scripts must stay deterministic) and lives as long as the meta hash: it changes only
 * when the meta hash was deleted or expired, i.e. when history was lost.
 */

/** Shared Lua helpers: the current time and the expiry sweep of a history stream. */
const COMMON = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Drop expired entries from the head of the stream (entries expire in offset order as the
-- memory engine's do: the sweep stops at the first entry that has not expired).
local function expire(stream, now)
  local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
  if #first == 0 then return end
  local x = tonumber(first[1][2][4])
  if x == 0 or x > now then return end
  while true do
    local batch = redis.call('XRANGE', stream, '-', '+', 'COUNT', 128)
    if #batch == 0 then return end
    local cut = nil
    for _, e in ipairs(batch) do
      local ex = tonumber(e[2][4])
      if ex > 0 and ex <= now then cut = e[1] else break end
    end
    if cut == nil then return end
    local off = tonumber(string.match(cut, '^(%d+)'))
    redis.call('XTRIM', stream, 'MINID', tostring(off + 1) .. '-0')
    if cut ~= batch[#batch][1] then return end
  end
end

-- The channel's epoch, creating the meta hash (and dropping any orphaned history) when missing.
local function epoch_of(meta, stream, candidate, meta_ttl)
  local epoch = redis.call('HGET', meta, 'e')
  if epoch then return epoch end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', candidate, 'o', 0)
  if meta_ttl > 0 then redis.call('PEXPIRE', meta, meta_ttl) end
  return candidate
end
`;

/**
 * Publish. KEYS: meta, stream. ARGV: pub/sub channel, candidate epoch, historySize,
 * historyTtlMs, meta TTL ms, fields JSON, payload.
 * Returns {epoch, offset, time}.
 */
export const PUBLISH_SCRIPT = `${COMMON}
local meta, stream = KEYS[1], KEYS[2]
local size, ttl, meta_ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local now = now_ms()
local epoch = epoch_of(meta, stream, ARGV[2], meta_ttl)
local offset = redis.call('HINCRBY', meta, 'o', 1)
if size > 0 then
  local x = 0
  if ttl > 0 then x = now + ttl end
  redis.call('XADD', stream, 'MAXLEN', '=', size, tostring(offset) .. '-0', 't', now, 'x', x, 'f', ARGV[6], 'd', ARGV[7])
  expire(stream, now)
  if ttl > 0 then redis.call('PEXPIRE', stream, ttl) else redis.call('PERSIST', stream) end
elseif redis.call('EXISTS', stream) == 1 then
  redis.call('XTRIM', stream, 'MAXLEN', 0)
end
-- The meta hash outlives its history (so the epoch survives), forever when history does.
if ttl == 0 and size > 0 then
  redis.call('PERSIST', meta)
elseif meta_ttl > 0 then
  redis.call('PEXPIRE', meta, math.max(ttl, meta_ttl))
end
local header = '{"e":"' .. epoch .. '","o":' .. offset .. ',"t":' .. now .. ',"f":' .. ARGV[6] .. '}'
redis.call('PUBLISH', ARGV[1], 'p' .. header .. '\\0' .. ARGV[7])
return {epoch, offset, now}
`;

/**
 * History read (also the channel summary). KEYS: meta, stream. ARGV: candidate epoch, meta TTL
 * ms, since epoch ('' = none), since offset, limit, reverse ('1'/'0').
 * Returns {epoch, offset, oldest, buffered, o1, t1, f1, d1, o2, ...}.
 */
export const HISTORY_SCRIPT = `${COMMON}
local meta, stream = KEYS[1], KEYS[2]
local now = now_ms()
local epoch = epoch_of(meta, stream, ARGV[1], tonumber(ARGV[2]))
local offset = tonumber(redis.call('HGET', meta, 'o'))
expire(stream, now)
local first = redis.call('XRANGE', stream, '-', '+', 'COUNT', 1)
local oldest = offset + 1
if #first > 0 then oldest = tonumber(string.match(first[1][1], '^(%d+)')) end
local out = {epoch, offset, oldest, redis.call('XLEN', stream)}
local limit = tonumber(ARGV[5])
if limit <= 0 or #first == 0 then return out end
local entries
if ARGV[3] ~= '' and ARGV[3] == epoch then
  entries = redis.call('XRANGE', stream, tostring(tonumber(ARGV[4]) + 1) .. '-0', '+', 'COUNT', limit)
elseif ARGV[3] == '' and ARGV[6] == '1' then
  entries = redis.call('XREVRANGE', stream, '+', '-', 'COUNT', limit)
else
  entries = redis.call('XRANGE', stream, '-', '+', 'COUNT', limit)
end
for _, e in ipairs(entries) do
  local f = e[2]
  out[#out + 1] = string.match(e[1], '^(%d+)')
  out[#out + 1] = f[2]
  out[#out + 1] = f[6]
  out[#out + 1] = f[8]
end
return out
`;

/**
 * Keep and send a control message. KEYS[1] retained sorted set. ARGV: expiry (ms), message,
 * now (ms), control pub/sub channel. Trims expired members, adds this one, lets the key live as
 * long as its last member, publishes; returns the number of subscribers reached.
 */
export const RETAIN_SCRIPT = `
local key = KEYS[1]
redis.call('ZREMRANGEBYSCORE', key, '-inf', ARGV[3])
redis.call('ZADD', key, ARGV[1], ARGV[2])
local last = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', key, last[2])
return redis.call('PUBLISH', ARGV[4], ARGV[2])
`;
