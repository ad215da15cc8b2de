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
