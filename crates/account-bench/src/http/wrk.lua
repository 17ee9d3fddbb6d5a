-- wrk script of `account-bench --http`: one scenario, described by the environment the
-- harness sets, and one JSON line of results from done() for the harness to parse.
--   ACCOUNT_WRK_METHOD  GET or POST
--   ACCOUNT_WRK_PATH    the path and query
--   ACCOUNT_WRK_BODY    a JSON body (empty: none)
--   ACCOUNT_WRK_KEYS    a file of API keys, one a line: requests rotate over them

local next_id = 0

function setup(thread)
  -- Threads start at different keys, so a spread run spreads from its first request.
  thread:set("id", next_id)
  next_id = next_id + 1
end

function init(args)
  local method = os.getenv("ACCOUNT_WRK_METHOD")
  local path = os.getenv("ACCOUNT_WRK_PATH")
  local body = os.getenv("ACCOUNT_WRK_BODY")
  if body == "" then
    body = nil
  end
  -- Requests are built once: request() is a table lookup, so wrk spends its CPU on sending.
  prebuilt = {}
  for key in io.lines(os.getenv("ACCOUNT_WRK_KEYS")) do
    if key ~= "" then
      local headers = { ["Authorization"] = "Bearer " .. key }
      if body then
        headers["Content-Type"] = "application/json"
      end
      table.insert(prebuilt, wrk.format(method, path, headers, body))
    end
  end
  if #prebuilt == 0 then
    error("no API keys in ACCOUNT_WRK_KEYS")
  end
  n = id * 7919
end

function request()
  n = n + 1
  return prebuilt[(n % #prebuilt) + 1]
end

function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,"write_errors":%d,'
      .. '"status_errors":%d,"timeouts":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
