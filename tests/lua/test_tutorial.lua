-- test_tutorial.lua — docs/tutorial-colorization.md runs as written: its configs
-- (the ```yaml blocks named by their first line) and its commands (the `taming
-- run` lines of its ```sh block) on a few generated colour photos, through
-- examples/colorization.lua; the Lua it quotes is the task file's own code.
package.path = os.getenv("TT_SRCDIR") .. "/tests/lua/?.lua;" .. package.path
local tt = require "taming"
local T = require "testlib"

-- the commands run in the tutorial's folder: absolute paths to the tree
local function absolute(p) return p:sub(1, 1) == "/" and p or (os.getenv("PWD") .. "/" .. p) end
local SRC = absolute(T.srcdir())
local BIN = absolute(T.taming())
local tmp = absolute(T.tmpdir("tutorial"))
T.sh("rm -rf '" .. tmp .. "'")
tt.fs.mkdir(tmp .. "/photos")
local tests = {}
local function test(name, fn) tests[#tests + 1] = {name, fn} end

local read = T.read

local doc = read(SRC .. "/docs/tutorial-colorization.md")
local task = read(SRC .. "/examples/colorization.lua")

-- the fenced blocks of the page: {lang =, text =}
local blocks = {}
for lang, text in doc:gmatch("```(%w*)\n(.-)```") do blocks[#blocks + 1] = {lang = lang, text = text} end

local function trim(s) return (s:gsub("%-%-.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")) end

test("quoted_lua_is_the_task_files_code", function()
  local n = 0
  for _, b in ipairs(blocks) do
    if b.lang == "lua" then
      for line in b.text:gmatch("[^\n]+") do
        local code = trim(line)
        if code ~= "" then
          n = n + 1
          T.ok(("the page quotes a line examples/colorization.lua lacks: %s"):format(code), task:find(code, 1, true))
        end
      end
    end
  end
  T.ok("the page quotes the task file", n >= 6)
  local loc, code = 0, 0
  for line in task:gmatch("([^\n]*)\n") do
    loc = loc + 1
    if trim(line) ~= "" then code = code + 1 end
  end
  T.ok(("the page's line count: %d lines, %d of them code"):format(loc, code),
    doc:find(("%d lines, %d of\nthem code"):format(loc, code), 1, true))
end)

test("the_tutorial_runs_as_written", function()
  -- eight smooth colour photos, 24x24 (size=16 resizes and crops them)
  for i = 0, 7 do
    local small = tt.rand({1, 3, 3, 3}, 100 + i) * 2 - 1
    local img = tt.interpolate(small, 24, 24, "bilinear")
    tt.image.save(("%s/photos/%d.png"):format(tmp, i), img:select(0, 0))
  end
  local configs = 0
  for _, b in ipairs(blocks) do
    local name = b.lang == "yaml" and b.text:match("^# ([%w_]+%.yaml)\n")
    if name then
      local f = assert(io.open(tmp .. "/" .. name, "w"))
      f:write(b.text)
      f:close()
      configs = configs + 1
    end
  end
  T.eq("configs on the page", configs, 3)
  local commands = {}
  for _, b in ipairs(blocks) do
    if b.lang == "sh" then
      for line in b.text:gmatch("[^\n]+") do
        if line:match("^taming run ") then commands[#commands + 1] = line end
      end
    end
  end
  T.eq("commands on the page", #commands, 4)
  local outs = {}
  for i, cmd in ipairs(commands) do
    local c = cmd:gsub("^taming ", BIN .. " "):gsub("examples/colorization%.lua",
      SRC .. "/examples/colorization.lua")
    local t0 = tt.time()
    local st, out = T.sh(("cd '%s' && %s"):format(tmp, c))
    if st ~= 0 then error(("command %d failed (status %d): %s\n%s"):format(i, st, cmd, out)) end
    print(("  step %d: %.1fs"):format(i, tt.time() - t0))
    outs[i] = out
  end
  T.ok("the transformer's stages came from ckpt_path: " .. outs[3],
    outs[3]:find("first stage: weights from logs/color_vq/checkpoints/step-00000020.safetensors", 1, true) and
    outs[3]:find("condition stage: weights from logs/gray_vq/checkpoints/step-00000020.safetensors", 1, true))
  local png = tt.image.load(tmp .. "/colorized.png", {raw = true})                    -- u8 [H, W, 3]
  T.eq("a colour sheet", png:size(2), 3)
  T.ok(("2x2 samples of 16x16: %dx%d"):format(png:size(0), png:size(1)), png:size(0) >= 32 and png:size(1) >= 32)
  -- the condition encoder saw the registered gray input: training the condition VQGAN
  -- on colour images would have failed on its one input channel
  T.ok("the condition stage trained", tt.fs.exists(tmp .. "/logs/gray_vq/checkpoints/step-00000020.safetensors"))
end)

os.exit(T.run("tutorial", tests))
