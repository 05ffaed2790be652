-- wrk script: Twilio SMS webhooks with real form fields, a fresh MessageSid and a valid signature per request.
-- usage: wrk ... -s bench/twilio_sms.lua URL -- PUBLIC_URL AUTH_TOKEN RUN_TAG SENDERS
package.path = debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua;" .. package.path
local hmac = require("hmac_sha1")
local stats = require("stats")

local threads, counter = {}, 0
local public_url, token, tag, senders

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  id = id or 0
  public_url, token, tag, senders = args[1], args[2], args[3], tonumber(args[4] or "10000")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

local function encode(value)
  return (value:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local bodies = { "Sí", "1", "no", "2.", "nuevo leon", "a veces", "tengo empleo", "👍", "me deportaron", "32 años" }

function request()
  counter = counter + 1
  local sid = string.format("SM%s%02d%028d", tag, id, counter)
  local from = string.format("+5255%08d", (counter * 7919 + id * 104729) % senders)
  local form = {
    ToCountry = "MX", ToState = "CDMX", SmsMessageSid = sid, NumMedia = "0", ToCity = "", FromZip = "",
    SmsSid = sid, FromState = "", SmsStatus = "received", FromCity = "", Body = bodies[counter % #bodies + 1],
    FromCountry = "MX", To = "+525512340000", ToZip = "", NumSegments = "1", MessageSid = sid,
    AccountSid = "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", From = from, ApiVersion = "2010-04-01",
  }
  local keys = {}
  for k in pairs(form) do keys[#keys + 1] = k end
  table.sort(keys)
  local signed, parts = { public_url .. "/webhooks/twilio/sms" }, {}
  for _, k in ipairs(keys) do
    signed[#signed + 1] = k .. form[k]
    parts[#parts + 1] = k .. "=" .. encode(form[k])
  end
  local signature = hmac.base64(hmac.hmac_sha1(token, table.concat(signed)))
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded", ["X-Twilio-Signature"] = signature }
  return wrk.format(nil, "/webhooks/twilio/sms", headers, table.concat(parts, "&"))
end

done = stats.done
