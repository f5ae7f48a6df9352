-- Give up a probe without a verdict (its caller was cancelled): the next caller may probe.
-- KEYS[1]: the breaker's hash.
redis.call('HDEL', KEYS[1], 'pu')
return 1
