-- Claim a number for an interval, or say how long until it may be claimed. Atomic.
-- KEYS[1]: the number's key (a hash of the number, never the number itself).
-- ARGV[1]: the interval (ms, >= 1); ARGV[2]: the message id that claims it.
-- Returns -1 when claimed now, else the ms left on the current claim.
if redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[1], 'NX') then
  return -1
end
return math.max(0, redis.call('PTTL', KEYS[1]))
