-- ingest.lua — wrk sends pre-signed Cobo webhooks to POST /cobo/webhook, each once while they last.
-- INGEST_FILE: lines "TIMESTAMP<TAB>SIGNATURE<TAB>BODY" (tests/bench/bench_ingest_gen gen);
-- INGEST_THREADS: wrk's -t, so that thread k takes every line i with i % threads == k.
-- At the end prints one line:
--   WRK_RESULT created=N repeated=N other=N duration_us=N p50_us=N p99_us=N
-- created = 201 (a new record made durable), repeated = 200 (already known), other = anything else.
local threads = {}
local counter = 0

function setup(thread)
    thread:set("id", counter)
    counter = counter + 1
    table.insert(threads, thread)
end

function init(args)
    local file = os.getenv("INGEST_FILE")
    local nthreads = tonumber(os.getenv("INGEST_THREADS") or "1")
    reqs = {}
    local i = 0
    for line in io.lines(file) do
        if i % nthreads == id then
            local ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
            reqs[#reqs + 1] = wrk.format("POST", "/cobo/webhook", {
                ["Content-Type"] = "application/json",
                ["Biz-Timestamp"] = ts,
                ["Biz-Resp-Signature"] = sig,
            }, body)
        end
        i = i + 1
    end
    n = 0
    created, repeated, other = 0, 0, 0
end

function request()
    n = n + 1
    if n > #reqs then n = 1 end
    return reqs[n]
end

function response(status, headers, body)
    if status == 201 then
        created = created + 1
    elseif status == 200 then
        repeated = repeated + 1
    else
        other = other + 1
    end
end

function done(summary, latency, requests)
    local c, r, o = 0, 0, 0
    for _, t in ipairs(threads) do
        c = c + t:get("created")
        r = r + t:get("repeated")
        o = o + t:get("other")
    end
    io.write(string.format("WRK_RESULT created=%d repeated=%d other=%d duration_us=%d p50_us=%d p99_us=%d\n",
        c, r, o, summary.duration, latency:percentile(50), latency:percentile(99)))
end
