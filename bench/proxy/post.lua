-- wrk script for `make bench` (bench/proxy/run.py): every request is an Open Inference
-- Protocol v2 inference POST with the body from the file named by MLMON_BENCH_BODY
-- (default bench/proxy/infer_request.json, relative to the working directory).
local path = os.getenv("MLMON_BENCH_BODY") or "bench/proxy/infer_request.json"
local f = assert(io.open(path, "rb"), "cannot open request body " .. path)
local body = f:read("*a")
f:close()

wrk.method = "POST"
wrk.body = body
wrk.headers["Content-Type"] = "application/json"

-- No per-response Lua callback: wrk then parses responses in C, which keeps the load
-- generator cheap. It counts non-2xx/3xx answers itself (summary.errors.status).
function done(summary, latency, requests)
  io.write(string.format("bench: completed=%d errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
