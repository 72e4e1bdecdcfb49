-- taming.progress — training progress: on a terminal a bar redrawn in place
-- (step, steps/s, ETA, losses); elsewhere (a log file, a pipe, CI) plain lines
-- every `every` steps, one line per report, nothing but printable text.
-- Under an MPI launcher "auto" means lines: mpirun gives every rank a
-- pseudo-terminal even when its own output goes to a file or a pipe, so a rank
-- cannot tell, and redrawn bars would land in the log as carriage returns.
--
--   local bar = progress.new{total = 1000, start = 0, every = 50}
--   bar:update(step, {{"loss", 0.12}, {"lr", 1e-4}})
--   bar:message("wrote checkpoint")   -- a line of its own, the bar stays intact
--   bar:finish()
local tt = require "taming.core"

local P = {}
local Bar = {}
Bar.__index = Bar

-- The variables by which Open MPI, MPICH/PMI and PMIx launchers tell a process it was launched.
local LAUNCHER_VARS = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"}

-- true when the process was started by an MPI launcher (getenv: os.getenv, or a stand-in for tests)
function P.launched(getenv)
  getenv = getenv or os.getenv
  for _, v in ipairs(LAUNCHER_VARS) do
    local x = getenv(v)
    if x and x ~= "" then return true end
  end
  return false
end

-- opts: total, start (first step of this run), every (plain lines: report
-- interval), mode = "auto" | "bar" | "lines" | "off", out (a file, io.stdout),
-- width (bar columns), clock (a function returning seconds, for tests),
-- isatty and getenv (stand-ins for tt.isatty and os.getenv, for tests)
function P.new(o)
  o = o or {}
  local mode = o.mode or "auto"
  if mode == "auto" then
    local isatty = o.isatty or tt.isatty
    mode = (isatty(1) and not P.launched(o.getenv)) and "bar" or "lines"
  end
  if mode ~= "bar" and mode ~= "lines" and mode ~= "off" then
    error(("progress: mode must be auto, bar, lines or off, found '%s'"):format(tostring(mode)), 0)
  end
  local clock = o.clock or tt.time
  local self = setmetatable({total = o.total, start = o.start or 0, every = math.max(1, o.every or 50), mode = mode,
                             out = o.out or io.stdout, width = o.width or 24, clock = clock, t0 = clock(),
                             last_draw = -math.huge, drawn = false}, Bar)
  self.rate_t, self.rate_step, self.rate = self.t0, self.start, nil
  return self
end

local function hms(s)
  if not s or s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  return ("%d:%02d:%02d"):format(s // 3600, s % 3600 // 60, s % 60)
end
P.hms = hms

local function fmt(v)
  if type(v) ~= "number" then return tostring(v) end
  if math.type(v) == "integer" then return tostring(v) end
  local a = math.abs(v)
  if a ~= 0 and (a < 1e-3 or a >= 1e5) then return ("%.3e"):format(v) end
  return ("%.4f"):format(v)
end
P.format_number = fmt

-- logs: an ordered list {{name, value}, ...} or a table {name = value} (sorted)
local function items(logs)
  if not logs then return {} end
  if logs[1] ~= nil then return logs end
  local out = {}
  for k, v in pairs(logs) do out[#out + 1] = {k, v} end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

-- steps per second over this run (the rate of the last stretch once it is long enough)
function Bar:speed(step, now)
  local elapsed = now - self.t0
  if step <= self.start or elapsed <= 0 then return nil end
  local overall = (step - self.start) / elapsed
  -- follow changes of speed: a rate over at least 2 seconds of recent steps
  if now - self.rate_t >= 2.0 and step > self.rate_step then
    self.rate = (step - self.rate_step) / (now - self.rate_t)
    self.rate_t, self.rate_step = now, step
  end
  return self.rate or overall
end

function Bar:line(step, logs, now)
  local rate = self:speed(step, now)
  local parts = {}
  if self.total then parts[1] = ("step %d/%d"):format(step, self.total) else parts[1] = ("step %d"):format(step) end
  parts[#parts + 1] = rate and ("%.2f it/s"):format(rate) or "- it/s"
  if self.total then
    parts[#parts + 1] = "eta " .. (rate and hms((self.total - step) / rate) or "?")
  end
  for _, kv in ipairs(items(logs)) do parts[#parts + 1] = kv[1] .. " " .. fmt(kv[2]) end
  return table.concat(parts, " | ")
end

function Bar:update(step, logs)
  if self.mode == "off" then return end
  local now = self.clock()
  local last = self.total and step >= self.total
  if self.mode == "lines" then
    if step % self.every == 0 or last then
      self.out:write(self:line(step, logs, now), "\n")
      self.out:flush()
    end
    return
  end
  -- redraw at most 10 times a second, and always for the last step
  if now - self.last_draw < 0.1 and not last then return end
  self.last_draw = now
  local text = self:line(step, logs, now)
  if self.total and self.total > 0 then
    local done = math.min(self.width, math.floor(self.width * step / self.total))
    text = "[" .. string.rep("#", done) .. string.rep(".", self.width - done) .. "] " .. text
  end
  self.out:write("\r", text, "\27[K")
  self.out:flush()
  self.drawn = true
end

-- A line of its own (checkpoints, warnings) without breaking the bar.
function Bar:message(text)
  if self.mode == "off" then return end
  if self.mode == "bar" and self.drawn then self.out:write("\r\27[K") end
  self.out:write(text, "\n")
  self.out:flush()
  if self.mode == "bar" then self.last_draw = -math.huge end
end

function Bar:finish()
  if self.mode == "bar" and self.drawn then self.out:write("\n") end
  self.out:flush()
  self.drawn = false
end

return P
