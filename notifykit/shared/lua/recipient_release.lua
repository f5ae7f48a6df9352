-- Give back a claim on a number, only when this message still holds it. Atomic.
-- KEYS[1]: the number's key; ARGV[1]: the message id whose claim is given back.
-- Returns 1 when the claim was given back, 0 when another message holds it (or none does).
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
