-- One wrk script for every scenario, configured through the environment:
--   BENCH_PATHS         file with one request path per line (rotated through)
--   BENCH_METHOD        GET (default) or POST
--   BENCH_AUTH          the Authorization header value, if any
--   BENCH_CONTENT_TYPE  the body's content type
--   BENCH_BODY          body template; "{n}" becomes a value unique to this run's request
--   BENCH_IDEMPOTENCY   if set, each request's Idempotency-Key: this prefix and the request's "{n}"
-- done() prints one line "BENCH_JSON {...}" with the counts, status codes and latency percentiles (µs).

local threads = {}

function setup(thread)
  thread:set("thread_no", #threads)
  table.insert(threads, thread)
end

function init(args)
  paths = {}
  for line in io.lines(os.getenv("BENCH_PATHS")) do
    if #line > 0 then paths[#paths + 1] = line end
  end
  method = os.getenv("BENCH_METHOD") or "GET"
  body_template = os.getenv("BENCH_BODY")
  headers = {}
  local auth = os.getenv("BENCH_AUTH")
  if auth then headers["Authorization"] = auth end
  local ctype = os.getenv("BENCH_CONTENT_TYPE")
  if ctype then headers["Content-Type"] = ctype end
  idempotency = os.getenv("BENCH_IDEMPOTENCY")
  counter = 0
  statuses = {}
end

function request()
  counter = counter + 1
  local path = paths[((counter + thread_no * 7919) % #paths) + 1]
  local body = nil
  local n = thread_no .. "x" .. counter
  if body_template then
    body = body_template:gsub("{n}", n)
  end
  if idempotency then headers["Idempotency-Key"] = idempotency .. n end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, n in pairs(counts) do merged[status] = (merged[status] or 0) + n end
  end
  local parts = {}
  for status, n in pairs(merged) do parts[#parts + 1] = string.format('"%s": %d', status, n) end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"duration_us": %d, "requests": %d, "bytes": %d, "statuses": {%s}, ' ..
    '"socket_errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"latency_us": {"mean": %.1f, "max": %d, "p50": %d, "p90": %d, "p95": %d, "p99": %d}}\n',
    summary.duration, summary.requests, summary.bytes, table.concat(parts, ", "),
    e.connect, e.read, e.write, e.timeout,
    latency.mean, latency.max, latency:percentile(50), latency:percentile(90), latency:percentile(95),
    latency:percentile(99)))
end
