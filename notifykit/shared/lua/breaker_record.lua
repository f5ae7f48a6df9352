-- Report how an admitted attempt went. Atomic: failures of every process are counted
-- together; the one that reaches the threshold, or a failed probe, opens the breaker.
-- KEYS[1]: the breaker's hash (see breaker_admit.lua).
-- ARGV: probe (0/1), effect (healthy | vendor_failure | account_failure), detail,
--       threshold, cooldown (ms), account cooldown (ms), key TTL (ms).
-- Returns {open (0/1), ms until retry, failures, reason}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local key = KEYS[1]
local probe = ARGV[1] == '1'
local effect = ARGV[2]
if probe then
  redis.call('HDEL', key, 'pu')
end
if effect == 'healthy' then
  redis.call('HSET', key, 'f', 0, 'ou', 0, 'r', '')
elseif effect == 'account_failure' then
  redis.call('HSET', key, 'ou', now + tonumber(ARGV[6]), 'r', 'account unusable: ' .. ARGV[3])
else
  local failures = redis.call('HINCRBY', key, 'f', 1)
  local open_until = tonumber(redis.call('HGET', key, 'ou')) or 0
  -- An answer to a request admitted before the breaker opened does not extend it.
  if probe or (open_until == 0 and failures >= tonumber(ARGV[4])) then
    redis.call('HSET', key, 'ou', now + tonumber(ARGV[5]),
      'r', failures .. ' consecutive failures, last: ' .. ARGV[3])
  end
end
redis.call('PEXPIRE', key, tonumber(ARGV[7]))
local h = redis.call('HMGET', key, 'ou', 'f', 'r')
local open_until = tonumber(h[1]) or 0
local open = 0
if open_until > 0 then open = 1 end
return {open, math.max(0, open_until - now), tonumber(h[2]) or 0, h[3] or ''}
