-- wrk script: POST one ≈300-byte feedback item per request to a generic signed webhook.
--
--   wrk -t1 -c32 -d10s -s bench/wrk/post_webhook.lua \
--       http://127.0.0.1:8000/webhook/hook/bench -- "sha256=<hex HMAC-SHA256 of the body>"
--
-- The body is webhook_item.json next to this script (trailing white space removed, the same
-- size as event.json); the X-Signature header comes from the first script argument (after
-- `--`), computed by the caller with the source's secret (bench/feedback.py does). The request
-- and the closing "WRKJSON " line are those of post_event.lua, loaded here, so both endpoints
-- are loaded the same way but for the path, the body and the header that authenticates it.

local src = debug.getinfo(1, "S").source
local dir = (src:sub(1, 1) == "@" and src:sub(2):match("(.*/)")) or "./"
dofile(dir .. "post_event.lua")

local f = assert(io.open(dir .. "webhook_item.json", "rb"), "cannot open webhook_item.json")
wrk.body = f:read("*a"):gsub("%s+$", "")
f:close()

function init(args)
  wrk.headers["X-Signature"] = args[1] or ""
end
