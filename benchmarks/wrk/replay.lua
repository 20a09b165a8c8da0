-- Replay pre-signed webhook deliveries with wrk, each at most once.
--
--   wrk -t1 -c50 -d300s -T30s -s benchmarks/wrk/replay.lua URL -- REQUESTS_FILE
--
-- REQUESTS_FILE has one delivery a line: "<Odygy-Signature value>\t<raw JSON body>".
-- Every request is pre-formatted in init(); request() hands them out in order and,
-- once all are out, returns an empty string (the connection then sends nothing more).
-- When the last answer arrives the thread stops and the main thread's sleep is cut
-- short (SIGINT to the main thread), so wrk's duration ends with the last answer.
-- Run it with one thread (-t1): the stop signal assumes a single thread.
--
-- done() prints one line "WRK_RESULT {json}" with the requests, the duration, the
-- latency percentiles (microseconds, as wrk reports them), the status counts and
-- the number of answers that said "duplicate".

local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clk_id, bench_timespec *tp);
  int getpid(void);
  int tgkill(int tgid, int tid, int sig);
]]

local CLOCK_MONOTONIC = 1
local SIGINT = 2
local ts = ffi.new("bench_timespec")

local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- Per-thread state (each thread has its own Lua state).
local requests = {}
local total = 0
local next_index = 1
sent = 0
answered = 0
duplicates = 0
statuses = {}
first_us = 0
last_us = 0
local stopped = false
local verified = false

function init(args)
  local path = args[1]
  if path == nil then
    error("replay.lua needs the requests file: wrk ... URL -- FILE")
  end
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(path) do
    local tab = line:find("\t", 1, true)
    if tab then
      headers["Odygy-Signature"] = line:sub(1, tab - 1)
      total = total + 1
      requests[total] = wrk.format("POST", wrk.path, headers, line:sub(tab + 1))
    end
  end
  if total == 0 then
    error("no requests in " .. path)
  end
end

function request()
  if not verified then
    -- wrk calls request() once before the run to count pipelined requests
    -- (script_verify_request); that call sends nothing, so hand out a copy.
    verified = true
    return requests[1]
  end
  if next_index > total then
    return ""
  end
  local r = requests[next_index]
  requests[next_index] = nil
  next_index = next_index + 1
  sent = sent + 1
  if first_us == 0 then
    first_us = now_us()
  end
  return r
end

function response(status, headers, body)
  answered = answered + 1
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  if body and body:find('"duplicate"', 1, true) then
    duplicates = duplicates + 1
  end
  if answered >= total and not stopped then
    stopped = true
    last_us = now_us()
    wrk.thread:stop()
    local pid = ffi.C.getpid()
    ffi.C.tgkill(pid, pid, SIGINT)
  end
end

local function json_value(v)
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do
      table.insert(parts, string.format("%q:%s", tostring(k), json_value(x)))
    end
    return "{" .. table.concat(parts, ",") .. "}"
  elseif type(v) == "string" then
    return string.format("%q", v)
  elseif v == nil then
    return "null"
  else
    return string.format("%.17g", v)
  end
end

function done(summary, latency, rate)
  local out = {
    requests = summary.requests,
    duration_us = summary.duration,
    errors = summary.errors,
    latency_us = {
      p50 = latency:percentile(50.0),
      p90 = latency:percentile(90.0),
      p99 = latency:percentile(99.0),
      max = latency.max,
      mean = latency.mean,
    },
    sent = 0,
    answered = 0,
    duplicates = 0,
    statuses = {},
    window_us = 0,
  }
  local first, last = nil, nil
  for _, t in ipairs(threads) do
    out.sent = out.sent + t:get("sent")
    out.answered = out.answered + t:get("answered")
    out.duplicates = out.duplicates + t:get("duplicates")
    for k, n in pairs(t:get("statuses")) do
      out.statuses[k] = (out.statuses[k] or 0) + n
    end
    local f, l = t:get("first_us"), t:get("last_us")
    if f > 0 and (first == nil or f < first) then first = f end
    if l > 0 and (last == nil or l > last) then last = l end
  end
  if first and last then
    out.window_us = last - first
  end
  io.write("WRK_RESULT ", json_value(out), "\n")
end
