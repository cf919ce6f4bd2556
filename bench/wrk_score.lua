-- wrk script of bench/serving_load.py: POSTs the JSON bodies of the file PAYLOADS (one per line)
-- in random order with the key API_KEY. RATE > 0 paces the requests of all connections on one
-- schedule of RATE req/s (one wrk thread); a slot missed because every connection was busy is
-- dropped, so falling behind shows as fewer answers than offered. done() prints one JSON line:
-- answers by status, latency percentiles at the client and the service's own `latency_ms`.
-- With TIMELINE set, done() also writes each answer to that file as a line "arrival (monotonic
-- ms),status,latency_ms,model_version" (bench/rollout.py reads a swap's window from it).
local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } fraud_timespec;
int clock_gettime(int clock_id, fraud_timespec *now);
]]
local CLOCK_MONOTONIC = 1
local clock = ffi.new("fraud_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, clock)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_nsec) / 1e6
end

local rate = tonumber(os.getenv("RATE") or "0")
local bodies = {}
for line in io.lines(os.getenv("PAYLOADS")) do
  bodies[#bodies + 1] = line
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("API_KEY")

function request()
  return wrk.format(nil, nil, nil, bodies[math.random(#bodies)])
end

local next_slot = nil
if rate > 0 then
  function delay()
    local now = now_ms()
    if next_slot == nil or next_slot < now then
      next_slot = now
    end
    local wait = next_slot - now
    next_slot = next_slot + 1000 / rate
    return math.floor(wait)
  end
end

statuses = {}
service_ms = {}
timeline = {}
local keep_timeline = os.getenv("TIMELINE") ~= nil
function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  local inside = status == 200 and body:match('"latency_ms":([%d.]+)')
  if inside then
    service_ms[#service_ms + 1] = tonumber(inside)
  end
  if keep_timeline then
    local version = status == 200 and body:match('"model_version":"([^"]*)"') or ""
    timeline[#timeline + 1] = string.format("%.3f,%d,%s,%s", now_ms(), status, inside or "",
                                            version)
  end
end

local threads = {}
function setup(thread)
  threads[#threads + 1] = thread
end

local function quantile(sorted, q)
  if #sorted == 0 then
    return -1
  end
  return sorted[math.floor(q * (#sorted - 1)) + 1]
end

function done(summary, latency, requests)
  local all_statuses, inside = {}, {}
  if keep_timeline then
    local out = io.open(os.getenv("TIMELINE"), "w")
    for _, thread in ipairs(threads) do
      for _, line in ipairs(thread:get("timeline")) do
        out:write(line, "\n")
      end
    end
    out:close()
  end
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      all_statuses[status] = (all_statuses[status] or 0) + count
    end
    for _, ms in ipairs(thread:get("service_ms")) do
      inside[#inside + 1] = ms
    end
  end
  table.sort(inside)
  local parts = {}
  for status, count in pairs(all_statuses) do
    parts[#parts + 1] = string.format('"%s": %d', status, count)
  end
  local e = summary.errors
  io.write(string.format(
    '{"seconds": %.3f, "statuses": {%s}, "socket_errors": %d, "p50": %.3f, "p95": %.3f, '
    .. '"p99": %.3f, "service_p50": %.3f, "service_p99": %.3f}\n',
    summary.duration / 1e6, table.concat(parts, ", "),
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    quantile(inside, 0.50), quantile(inside, 0.99)))
end
