"""Server-side Lua: each script touches only one system's keys (one hash tag, one cluster slot)
and runs atomically, so a batch gets contiguous seqs and is all-or-nothing."""

from __future__ import annotations

APPEND = """
-- KEYS: 1 seq counter, 2 events, 3 audits, 4 dead_letters, 5 gaps
-- ARGV: 1 n, 2 maxlen ('' = none), 3 minid ('' = none), then runs of records of one kind:
--       stream index (2..4), run length, the run's data values each followed by a newline
--       (one argument per run: a v1 line never holds a raw newline)
local n = tonumber(ARGV[1])
local last = redis.call('INCRBY', KEYS[1], n)
if last == n then
  -- the counter was missing (first append, or the key was lost: evicted, deleted, restored
  -- apart from the streams): never hand out a seq the log already holds
  local top = 0
  for i = 2, 4 do
    local e = redis.call('XREVRANGE', KEYS[i], '+', '-', 'COUNT', 1)
    if #e > 0 then
      local f = e[1][2]
      for j = 1, #f, 2 do
        if f[j] == 'seq' then
          local v = tonumber(f[j + 1])
          if v and v > top then top = v end
        end
      end
    end
  end
  for _, g in ipairs(redis.call('XRANGE', KEYS[5], '-', '+')) do
    local f = g[2]
    for j = 1, #f, 2 do
      if f[j] == 'data' then
        local ok, rec = pcall(cjson.decode, f[j + 1])
        if ok and type(rec) == 'table' and tonumber(rec['through']) and
            tonumber(rec['through']) > top then
          top = tonumber(rec['through'])
        end
      end
    end
  end
  if top > 0 then
    last = top + n
    redis.call('SET', KEYS[1], string.format('%d', last))
  end
end
local first = last - n + 1
local touched = {}
local call, find, sub, format = redis.call, string.find, string.sub, string.format
-- seq in decimal without formatting a number per entry (Redis 7.0 turns a Lua number into
-- text with printf's %.17g; that, or string.format, was a tenth of the script's work): the
-- digits above the last two change once per 100 entries, the last two come from a table
local last_two = {LAST_TWO}
local hi, lo = math.floor(first / 100), first % 100
local head = hi > 0 and format('%d', hi) or nil
for a = 4, #ARGV, 3 do
  local k = KEYS[tonumber(ARGV[a])]
  local lines = ARGV[a + 2]
  local at = 1
  for _ = 1, tonumber(ARGV[a + 1]) do
    local nl = find(lines, '\\n', at, true)
    local seq
    if head then seq = head .. last_two[lo + 1] else seq = format('%d', lo) end
    call('XADD', k, '*', 'data', sub(lines, at, nl - 1), 'seq', seq)
    lo = lo + 1
    if lo == 100 then
      lo, hi = 0, hi + 1
      head = format('%d', hi)
    end
    at = nl + 1
  end
  touched[k] = true
end
if ARGV[2] ~= '' or ARGV[3] ~= '' then
  for k, _ in pairs(touched) do
    if ARGV[2] ~= '' then redis.call('XTRIM', k, 'MAXLEN', '~', ARGV[2]) end
    if ARGV[3] ~= '' then redis.call('XTRIM', k, 'MINID', '~', ARGV[3]) end
  end
end
return first
""".replace("{LAST_TWO}", "{" + ", ".join(f"'{i:02d}'" for i in range(100)) + "}")

QUARANTINE = """
-- KEYS: 1 source stream, 2 quarantine stream
-- ARGV: 1 entry id, 2 anomaly kind, 3 detail, 4 timestamp
-- Copies every original field of the entry to the quarantine stream, then deletes it.
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found == 0 then return 0 end
local fields = found[1][2]
local args = {KEYS[2], '*', '_papyra_source', KEYS[1], '_papyra_entry_id', ARGV[1],
              '_papyra_anomaly', ARGV[2], '_papyra_detail', ARGV[3],
              '_papyra_quarantined_at', ARGV[4]}
for i = 1, #fields do args[#args + 1] = fields[i] end
redis.call('XADD', unpack(args))
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""

COMPACT = """
-- KEYS: 1 events, 2 audits, 3 dead_letters, 4 gaps
-- ARGV: 1..3 MINID per data stream ('' = leave), 4 gap data ('' = none), 5 gap seq,
--       6.. gap entry ids to delete (the retention gaps the new one replaces)
local removed = 0
for i = 1, 3 do
  if ARGV[i] ~= '' then removed = removed + redis.call('XTRIM', KEYS[i], 'MINID', ARGV[i]) end
end
if ARGV[4] ~= '' then
  for i = 6, #ARGV do redis.call('XDEL', KEYS[4], ARGV[i]) end
  redis.call('XADD', KEYS[4], '*', 'data', ARGV[4], 'seq', ARGV[5])
end
return removed
"""

POISON = """
-- KEYS: 1 source stream, 2 poison stream
-- ARGV: 1 entry id, 2 group, 3 consumer, 4 deliveries, 5 timestamp
-- Copies the entry (every original field) to the poison stream and acknowledges it.
local found = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #found > 0 then
  local args = {KEYS[2], '*', '_papyra_source', KEYS[1], '_papyra_entry_id', ARGV[1],
                '_papyra_group', ARGV[2], '_papyra_consumer', ARGV[3],
                '_papyra_deliveries', ARGV[4], '_papyra_poisoned_at', ARGV[5]}
  local fields = found[1][2]
  for i = 1, #fields do args[#args + 1] = fields[i] end
  redis.call('XADD', unpack(args))
end
redis.call('XACK', KEYS[1], ARGV[2], ARGV[1])
return #found
"""
