-- wrk script: POST one ≈300-byte JSON event per request.
--
--   wrk -t1 -c32 -d10s -s bench/wrk/post_event.lua \
--       http://127.0.0.1:8000/v1/streams/usage/events -- "$TOKEN"
--
-- The bearer token comes from the first script argument (after `--`) or from $SLUICE_TOKEN;
-- with neither, no Authorization header is sent. The body is event.json next to this script
-- (or the file named by $BENCH_EVENT_FILE). The request is static, so wrk builds it once and
-- this script costs nothing per request. At the end one line starting with "WRKJSON " gives
-- the figures as JSON for bench/run.py.

local function script_dir()
  local src = debug.getinfo(1, "S").source
  return (src:sub(1, 1) == "@" and src:sub(2):match("(.*/)")) or "./"
end

local function read_file(path)
  local f = assert(io.open(path, "rb"), "cannot open " .. path)
  local data = f:read("*a")
  f:close()
  return data
end

local event = read_file(os.getenv("BENCH_EVENT_FILE") or (script_dir() .. "event.json"))
event = event:gsub("%s+$", "")

wrk.method = "POST"
wrk.body = event
wrk.headers["Content-Type"] = "application/json"

function init(args)
  local token = args[1] or os.getenv("SLUICE_TOKEN")
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"body_bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, #event,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
