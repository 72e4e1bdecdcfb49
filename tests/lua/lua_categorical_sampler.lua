-- lua_categorical_sampler.lua — the categorical sampler (temperature, top-k)
-- written in Lua with the tensor ops, for `sampler=FILE.lua` in the sampling
-- pipelines: the file returns make(settings) -> f(logits [B, V]) -> i64 [B].
-- With the same seed it draws what the categorical plugin draws.
local tt = require "taming"

return function(s)
  local rng = tt.rng(s.seed or 0)
  local inv_t, k = 1 / (s.temperature or 1.0), s.top_k
  return function(logits)
    local l = logits * inv_t
    if k and k > 0 then
      local kth = l:topk(k):slice(1, k - 1, k)             -- [B, 1]
      l = l:masked_fill(l:lt(kth), -math.huge)             -- ties with the k-th value stay
    end
    return tt.multinomial(l:softmax(-1), 1, rng):flatten()
  end
end
