-- wrk script for bench/serve_bench.sh: POST /predict with one image as the multipart field
-- `file` (what `curl -F "file=@image.png"` sends), counting non-200 answers as errors.
-- Usage: wrk -s serve_wrk.lua URL -- IMAGE
local boundary = "ddpipe-bench-4f2a"

function init(args)
  local f = assert(io.open(args[1], "rb"))
  local image = f:read("*all")
  f:close()
  local body = "--" .. boundary .. "\r\n" ..
      "Content-Disposition: form-data; name=\"file\"; filename=\"image.png\"\r\n" ..
      "Content-Type: image/png\r\n\r\n" .. image .. "\r\n--" .. boundary .. "--\r\n"
  req = wrk.format("POST", "/predict",
                   {["Content-Type"] = "multipart/form-data; boundary=" .. boundary}, body)
end

function request()
  return req
end

function done(summary, latency, requests)
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.timeout + summary.errors.status
  io.write(string.format(
      "RESULT {\"requests\": %d, \"seconds\": %.3f, \"rps\": %.1f, \"p50_ms\": %.2f, " ..
      "\"p99_ms\": %.2f, \"max_ms\": %.2f, \"errors\": %d}\n",
      summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
      latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000, errors))
end
