-- wrk script for the Warden benchmark (bench/run.py runs it; one file, several modes).
--
--   wrk ... -s bench/wrk.lua URL -- MODE [ARGS...]
--
--   plain                         GET the URL as given (floor, /health/ready)
--   bearer   TOKENS               GET the URL with "Authorization: Bearer <token>", cycling
--                                 through the access tokens in file TOKENS (one per line)
--   header   NAME TOKENS          GET the URL with header NAME set to each token of TOKENS
--                                 in turn (a peer's own token header)
--   paths    PATHS TOKEN          GET each path of file PATHS in turn with one Bearer TOKEN
--                                 (admin get-by-id over many ids, deep cursor pages)
--   refresh  TOKENS N             POST /api/v1/auth/refresh, each request with a refresh
--                                 token of its own: thread k of N takes lines k, k+N, k+2N...
--                                 A token is never sent twice; when a thread runs out it
--                                 stops and the result says so ("exhausted").
--   login    EMAILS PASSWORD      POST /api/v1/auth/login cycling through the emails
--
-- done() prints one line "BENCH_JSON {...}" with counts and latency percentiles (us).

local threads = {}
local next_id = 1

function setup(thread)
   thread:set("tid", next_id)
   thread:set("nthreads", 0)
   table.insert(threads, thread)
   next_id = next_id + 1
end

local function read_lines(path)
   local lines = {}
   local file = assert(io.open(path, "r"))
   for line in file:lines() do
      if line ~= "" then
         table.insert(lines, line)
      end
   end
   file:close()
   return lines
end

local mode
local items = {}
local position = 0
local token
local header_name
local password
exhausted = 0
used = 0

function init(args)
   mode = args[1] or "plain"
   wrk.headers["User-Agent"] = "warden-bench"
   if mode == "bearer" then
      items = read_lines(args[2])
      -- Start each thread somewhere else in the list.
      position = (tid - 1) * 7919
   elseif mode == "header" then
      header_name = args[2]
      items = read_lines(args[3])
      position = (tid - 1) * 7919
   elseif mode == "paths" then
      items = read_lines(args[2])
      token = args[3]
      position = (tid - 1) * 7919
   elseif mode == "refresh" then
      local all = read_lines(args[2])
      local count = tonumber(args[3])
      for i = tid, #all, count do
         table.insert(items, all[i])
      end
   elseif mode == "login" then
      items = read_lines(args[2])
      password = args[3]
      position = (tid - 1) * 7919
   end
end

local json_headers = { ["Content-Type"] = "application/json", ["User-Agent"] = "warden-bench" }

local function next_item()
   position = position + 1
   return items[(position - 1) % #items + 1]
end

function request()
   if mode == "bearer" then
      return wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. next_item() })
   elseif mode == "header" then
      return wrk.format("GET", nil, { [header_name] = next_item() })
   elseif mode == "paths" then
      return wrk.format("GET", next_item(), { ["Authorization"] = "Bearer " .. token })
   elseif mode == "refresh" then
      position = position + 1
      local refresh = items[position]
      if refresh == nil then
         -- Out of tokens: never replay one (that would end the session as a theft).
         exhausted = 1
         wrk.thread:stop()
         refresh = "exhausted"
      else
         used = used + 1
      end
      return wrk.format("POST", "/api/v1/auth/refresh", { ["Authorization"] = "Bearer " .. refresh })
   elseif mode == "login" then
      local body = '{"email":"' .. next_item() .. '","password":"' .. password .. '"}'
      return wrk.format("POST", "/api/v1/auth/login", json_headers, body)
   end
   return wrk.format("GET")
end

function done(summary, latency, requests)
   local total_exhausted = 0
   local total_used = 0
   for _, thread in ipairs(threads) do
      total_exhausted = total_exhausted + (thread:get("exhausted") or 0)
      total_used = total_used + (thread:get("used") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
         .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f},'
         .. '"exhausted_threads":%d,"tokens_used":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean, total_exhausted, total_used))
end
