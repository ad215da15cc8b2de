-- One request, described by the environment, with a token per request taken
-- round-robin from TOKENS (comma-separated): each connection acts for many users.
local method = os.getenv("METHOD") or "GET"
local body = os.getenv("BODY")
local tokens = {}
for token in string.gmatch(os.getenv("TOKENS") or "", "[^,]+") do
  table.insert(tokens, token)
end
local next_token = 0

request = function()
  local headers = {}
  if body then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
  end
  if #tokens > 0 then
    next_token = next_token % #tokens + 1
    headers["Authorization"] = "Bearer " .. tokens[next_token]
  end
  return wrk.format(method, nil, headers, body)
end

-- PAUSE_MS (milliseconds, fractions allowed): each connection waits about this
-- long after an answer before its next request, so that wrk asks at a rate.
-- wrk waits whole milliseconds; a pause of 2.3 is 2 seven times in ten and 3
-- the other three, at random.
local pause = tonumber(os.getenv("PAUSE_MS") or "")
if pause then
  delay = function()
    local whole = math.floor(pause)
    if math.random() < pause - whole then
      return whole + 1
    end
    return whole
  end
end
