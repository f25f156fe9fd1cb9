-- make-coffee.lua: wrk script that loads coffee-server's /make-coffee.
--
--   wrk -t2 -c64 -d10s -s client/wrk/make-coffee.lua http://127.0.0.1:8080 -- MODE [SCALE]
--
-- MODE is blocking, async, naive or mixed (default async); SCALE multiplies
-- every step's duration (default 0.25). When the run ends it prints ONE line
-- that scripts can parse, fields separated by spaces, each key=value:
--
--   wrk-result mode=async scale=0.25 duration_s=10.00
--     requests=640 rps=63.9 p50_ms=1003.1 p90_ms=1006.0 p99_ms=1012.4
--     max_ms=1020.3 non2xx=0 connect_errors=0 read_errors=0 write_errors=0
--     timeouts=0
--
-- (on one line). non2xx counts answers that were not 2xx (503 when the server
-- is over its in-flight limit, 502/504 when the kitchen failed): a run with
-- non2xx > 0 did not measure what it claims to.
--
-- With WRK_ORDER_IDS=1 in the environment, a second line follows with the
-- order_id of every answer that was 200, for checking them against the
-- database (tests/compose-smoke):
--
--   wrk-order-ids count=640 ids=17,18,19,...
--
-- (reading every answer's body costs wrk some CPU: off by default).

-- Globals, not locals: done() reads them back with thread:get().
coffee_mode, coffee_scale = "async", "0.25"
coffee_ids = ""
local threads = {}

-- Main thread, once per wrk thread: kept so that done() can read back the
-- mode and scale that init() set there (each thread has its own Lua state).
function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    coffee_mode = args[1] or coffee_mode
    coffee_scale = args[2] or coffee_scale
    wrk.method = "GET"
    wrk.path = "/make-coffee?mode=" .. coffee_mode .. "&scale=" .. coffee_scale
    wrk.headers["Accept"] = "application/json"
end

if os.getenv("WRK_ORDER_IDS") == "1" then
    -- Each thread: the ids of its 200 answers, comma-separated.
    function response(status, headers, body)
        if status == 200 then
            local id = string.match(body, '"order_id":(%d+)')
            if id then
                coffee_ids = coffee_ids .. id .. ","
            end
        end
    end
end

-- Main thread, after every thread stopped.
function done(summary, latency, requests)
    local m, s = "?", "?"
    if threads[1] then
        m, s = threads[1]:get("coffee_mode"), threads[1]:get("coffee_scale")
    end
    local secs = summary.duration / 1e6
    local e = summary.errors
    io.write(string.format(
        "wrk-result mode=%s scale=%s duration_s=%.2f requests=%d rps=%.1f " ..
        "p50_ms=%.1f p90_ms=%.1f p99_ms=%.1f max_ms=%.1f non2xx=%d " ..
        "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
        m, s, secs, summary.requests, summary.requests / secs,
        latency:percentile(50) / 1000, latency:percentile(90) / 1000,
        latency:percentile(99) / 1000, latency.max / 1000, e.status,
        e.connect, e.read, e.write, e.timeout))
    if os.getenv("WRK_ORDER_IDS") == "1" then
        local all, n = {}, 0
        for _, t in ipairs(threads) do
            for id in string.gmatch(t:get("coffee_ids") or "", "%d+") do
                n = n + 1
                all[n] = id
            end
        end
        io.write(string.format("wrk-order-ids count=%d ids=%s\n", n, table.concat(all, ",")))
    end
end
