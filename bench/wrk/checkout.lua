-- Checkout under load: every user adds a beer, then every user checks out,
-- round after round. A user's two requests are a whole round of USERS
-- requests apart, so they never overlap even at many connections.
local tokens = {}
for token in string.gmatch(os.getenv("TOKENS") or "", "[^,]+") do
  table.insert(tokens, token)
end
-- wrk calls request() once before the run and throws that request away: the
-- first call is a harmless stand-in, so that no user's add is lost.
local step = -1

request = function()
  if step < 0 then
    step = 0
    return wrk.format("GET", "/health")
  end
  local user = step % #tokens + 1
  local adding = math.floor(step / #tokens) % 2 == 0
  step = step + 1
  local headers = {["Authorization"] = "Bearer " .. tokens[user]}
  if adding then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return wrk.format("PUT", "/api/orders/current", headers, "sku=123456&quantity=1")
  end
  return wrk.format("POST", "/api/orders/checkout", headers)
end
