-- wrk script: PUT one ≈300-byte JSON report per request to the Lightfile6 receiver.
--
--   wrk -t1 -c32 -d10s -s bench/wrk/put_usage.lua http://127.0.0.1:8000/usage -- bench-user
--
-- The USER_TOKEN header comes from the first script argument (after `--`) or from
-- $LF6_USER_TOKEN (default "bench-user"). Body, static request and the closing "WRKJSON " line
-- are those of post_event.lua, loaded here, so the two endpoints are loaded identically but for
-- the method and the header that identifies the sender.

local src = debug.getinfo(1, "S").source
local dir = (src:sub(1, 1) == "@" and src:sub(2):match("(.*/)")) or "./"
dofile(dir .. "post_event.lua")

wrk.method = "PUT"

function init(args)
  local user = args[1] or os.getenv("LF6_USER_TOKEN")
  wrk.headers["USER_TOKEN"] = (user and user ~= "") and user or "bench-user"
end
