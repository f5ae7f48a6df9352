-- May a caller try this provider instance now? Atomic: one probe at a time after cooldown.
-- KEYS[1]: the breaker's hash (f: consecutive failures, ou: open until, ms since the
-- epoch by Redis's clock, 0 when closed; pu: a probe holds it until then; r: reason).
-- ARGV[1]: how long a probe may hold the half-open breaker (ms), in case its caller dies.
-- Returns {admitted, probe, ms until retry, failures, reason}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local h = redis.call('HMGET', KEYS[1], 'ou', 'pu', 'f', 'r')
local open_until = tonumber(h[1]) or 0
local failures = tonumber(h[3]) or 0
local reason = h[4] or ''
if open_until == 0 then
  return {1, 0, 0, failures, reason}
end
local probe_until = tonumber(h[2]) or 0
if probe_until > now then
  return {0, 1, math.max(0, open_until - now), failures, reason}
end
if open_until > now then
  return {0, 0, open_until - now, failures, reason}
end
redis.call('HSET', KEYS[1], 'pu', now + tonumber(ARGV[1]))
return {1, 1, 0, failures, reason}
