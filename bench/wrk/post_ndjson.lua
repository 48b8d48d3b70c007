-- wrk script: POST bodies of N NDJSON lines (≈300 B each), Content-Type application/x-ndjson,
-- and count the events the server accepted from its 202 answers {"accepted": N}.
--
--   wrk -t1 -c8 -d10s -s bench/wrk/post_ndjson.lua \
--       http://127.0.0.1:8000/v1/streams/usage/events -- "$TOKEN" 2000
--
-- Arguments after `--`: bearer token (or $SLUICE_TOKEN; "" for none), lines per body (or
-- $BENCH_NDJSON_LINES, default 2000). Lines are event.json next to this script (or
-- $BENCH_EVENT_FILE) with "files" set to the line number, so no two lines of a body are equal.
-- At the end one line starting with "WRKJSON " gives the figures as JSON for bench/run.py.

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

local threads = {}
accepted = 0      -- per thread (each wrk thread has its own Lua state)
responses = 0
not_accepted = 0  -- answers other than 202
lines_per_body = 0
first_bad = ""

local function build_body(n)
  local parts = {}
  for i = 1, n do
    parts[i] = (event:gsub('"files":%d+', '"files":' .. i, 1))
  end
  return table.concat(parts, "\n") .. "\n"
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/x-ndjson"

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local token = args[1] or os.getenv("SLUICE_TOKEN")
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  lines_per_body = tonumber(args[2] or os.getenv("BENCH_NDJSON_LINES") or "2000")
  wrk.body = build_body(lines_per_body)
end

function response(status, headers, body)
  responses = responses + 1
  if status == 202 then
    local n = body:match('"accepted"%s*:%s*(%d+)')
    if n then
      accepted = accepted + tonumber(n)
    else
      not_accepted = not_accepted + 1
    end
  else
    not_accepted = not_accepted + 1
    if first_bad == "" then
      first_bad = tostring(status) .. " " .. body:sub(1, 200)
    end
  end
end

function done(summary, latency, requests)
  local total_accepted, total_responses, total_bad, lines, bad = 0, 0, 0, 0, ""
  for _, t in ipairs(threads) do
    total_accepted = total_accepted + t:get("accepted")
    total_responses = total_responses + t:get("responses")
    total_bad = total_bad + t:get("not_accepted")
    lines = t:get("lines_per_body")
    if bad == "" then bad = t:get("first_bad") end
  end
  local e = summary.errors
  bad = bad:gsub('[%c"\\]', " ")
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"bytes":%d,"lines_per_body":%d,' ..
    '"accepted":%d,"responses":%d,"not_accepted":%d,"first_bad":"%s",' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"p999":%d,"max":%d}}\n',
    summary.requests, summary.duration, summary.bytes, lines,
    total_accepted, total_responses, total_bad, bad,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max))
end
