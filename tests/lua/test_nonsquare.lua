-- test_nonsquare.lua — size=WxH: a 2:3 high-resolution run of the shipped
-- Fashion-MNIST model (40x60 pixels -> a 10x15 code grid, 8x8 window) matches
-- the official sliding-window loop (scripts/sample_conditional.py) written out
-- here cell by cell without a cache, in both directions; the sampling pipelines
-- and the condition builders take WxH.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

local M = T.srcdir() .. "/models/fashion_mnist"
if not tt.fs.exists(M .. "/transformer.safetensors") then
  os.exit(T.skip("nonsquare", M .. "/transformer.safetensors is absent"))
end
local P, C = require "taming.pipeline", require "taming.conditions"
local model = tt.load(M .. "/transformer.safetensors", {config = M .. "/transformer.yaml"})
local tmp = T.tmpdir("nonsquare")
local run = ("%s run %s/pipelines/%%s config=%s/transformer.yaml ckpt=%s/transformer.safetensors"):format(T.taming(),
  T.srcdir(), M, M)
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

-- The official loop for a window of `win` codes (16 there, anchor 8 = win / 2):
--   local_i = i if i <= a, win - (H - i) if H - i < a, else a; the same for j.
local function official(cond, H, W, win, sampler)
  local a = win // 2
  local grid = tt.zeros({1, H, W}, {dtype = "i64"})
  local function loc(i, n) if i <= a then return i elseif n - i < a then return win - (n - i) else return a end end
  for i = 0, H - 1 do
    local li = loc(i, H)
    for j = 0, W - 1 do
      local lj = loc(j, W)
      local crop = grid:narrow(1, i - li, win):narrow(2, j - lj, win):contiguous():reshape(1, win * win)
      local pos = li * win + lj
      local prefix = pos > 0 and tt.cat({cond, crop:narrow(1, 0, pos)}, 1) or cond
      local tok = tt.sample{gpt = model.transformer, sampler = sampler, prefix = prefix:contiguous(), steps = 1,
                            cache = false, vocab_limit = model.first_stage.n_embed}
      grid:narrow(1, i, 1):narrow(2, j, 1):copy_(tok:reshape(1, 1, 1))
    end
  end
  return grid
end

test("highres_2x3_matches_official_loop", function()
  local codes, png = tmp .. "/hr.npy", tmp .. "/hr.png"
  local status, out = T.sh(run:format("highres.lua") .. " size=40x60 class=3 seed=7 top_k=30 codes=" .. codes ..
    " output=" .. png)
  T.eq("highres exit status: " .. out, status, 0)
  local got = tt.npy.load(codes)
  T.eq("code grid", table.concat(got:shape(), "x"), "1x15x10")
  local img = tt.image.load(png)                                                  -- [1, 1, 60, 40]
  T.eq("image height", img:size(2), 60)
  T.eq("image width", img:size(3), 40)
  local _, cond = model:encode_to_c(tt.tensor({3}, {dtype = "i64"}))
  local ref = official(cond, 15, 10, 8, tt.plugin("sampler", "categorical", {seed = 7, top_k = 30}))
  T.equal("pipeline vs the official loop", got, ref)
  -- and landscape 3:2 through sample_class (the window moves in the other direction)
  local c2 = tmp .. "/cls.npy"
  status, out = T.sh(run:format("sample_class.lua") .. " size=60x40 class=5 n=1 seed=2 codes=" .. c2 ..
    " output=" .. tmp .. "/cls.png")
  T.eq("sample_class exit status: " .. out, status, 0)
  local _, c5 = model:encode_to_c(tt.tensor({5}, {dtype = "i64"}))
  T.equal("3:2 vs the official loop", tt.npy.load(c2), official(c5, 10, 15, 8, tt.plugin("sampler", "categorical",
    {seed = 2})))
end)

test("size_argument_and_conditions", function()
  local g = P.geometry(model, "1280x832")
  T.eq("1280x832 at f4", g.w .. "x" .. g.h, "320x208")
  T.eq("N is square", P.geometry(model, "48").w, 12)
  T.raises("not a multiple", function() P.geometry(model, "42x60") end, "size=42x60", "multiples of the downsampling factor 4")
  T.raises("bad form", function() P.parse_size("40by60") end, "expected N or WxH")
  local status, out = T.sh(run:format("highres.lua") .. " size=40x28 class=1")
  T.ok("a grid lower than the window: " .. out, status ~= 0 and out:find("smaller than the 8x8 window", 1, true))
  -- conditions at WxH: a 32x32 image scaled to cover 48x24 and centre-cropped
  local img = tmp .. "/sq.png"
  tt.image.save(img, (tt.rand({1, 1, 32, 32}, 3) * 2 - 1))
  local x = C.image(img, {w = 48, h = 24}, 1)
  T.eq("image condition WxH", table.concat(x:shape(), "x"), "1x1x24x48")
  local kp = tmp .. "/kp.txt"
  local f = io.open(kp, "w"); f:write("10 5\n40 20\n"); f:close()
  T.eq("pose condition WxH", table.concat(C.pose(kp, {w = 48, h = 24}, 2):shape(), "x"), "1x2x24x48")
end)

-- WxH conditions resize only the centre window: the same pixels as resizing the whole
-- image and cropping, for both orientations, u8 and f32, every interpolation
test("condition_window_equals_resize_then_crop", function()
  for _, src in ipairs({{37, 53, 3}, {61, 29, 1}, {20, 20, 3}}) do
    local f32 = tt.rand({src[1], src[2], src[3]}, 11) * 255
    for _, img in ipairs({f32, f32:byte()}) do
      for _, interp in ipairs({"nearest", "linear", "cubic", "area"}) do
        for _, size in ipairs({{w = 48, h = 24}, {w = 24, h = 40}, {w = 17, h = 9}}) do
          local h0, w0 = src[1], src[2]
          local k = math.max(size.w / w0, size.h / h0)
          local nh, nw = math.max(size.h, math.ceil(h0 * k - 1e-9)), math.max(size.w, math.ceil(w0 * k - 1e-9))
          local whole = tt.image.center_crop(tt.image.resize(img, nh, nw, interp), size.h, size.w)
          local what = ("%dx%dx%d %s %s -> %dx%d"):format(src[1], src[2], src[3], img:dtype(), interp, size.w, size.h)
          T.equal(what, C.resize_crop(img, size, interp), whole)
        end
      end
    end
  end
  -- a 1 x 3,000,000 strip to cover 64x48 would be 48 x 144,000,000 pixels resized whole
  local strip = tt.zeros({1, 3000000, 1}):byte()
  T.eq("thin strip, WxH", table.concat(C.resize_crop(strip, {w = 64, h = 48}, "linear"):shape(), "x"), "48x64x1")
end)

os.exit(T.run("nonsquare", tests))
