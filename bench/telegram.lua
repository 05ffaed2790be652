-- wrk script: Telegram webhook updates (private text messages) with a fresh update_id per request.
-- usage: wrk ... -s bench/telegram.lua URL -- SECRET RUN_TAG CHATS
package.path = debug.getinfo(1, "S").source:sub(2):match("(.*/)") .. "?.lua;" .. package.path
local stats = require("stats")

local threads, counter = {}, 0
local secret, tag, chats

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  id = id or 0
  secret, tag, chats = args[1], tonumber(args[2]), tonumber(args[3] or "10000")
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Telegram-Bot-Api-Secret-Token"] = secret
end

local texts = { "Sí", "1", "no", "2.", "nuevo leon", "a veces", "tengo empleo", "me deportaron", "32 años" }

function request()
  counter = counter + 1
  local update_id = tag * 100000000 + id * 10000000 + counter
  local chat = 100000 + (counter * 7919 + id * 104729) % chats
  local body = string.format(
    '{"update_id":%d,"message":{"message_id":%d,"from":{"id":%d,"is_bot":false,"first_name":"Ana",'
      .. '"language_code":"es"},"chat":{"id":%d,"first_name":"Ana","type":"private"},"date":1772474400,'
      .. '"text":"%s"}}',
    update_id, counter, chat, chat, texts[counter % #texts + 1])
  return wrk.format(nil, "/webhooks/telegram", nil, body)
end

done = stats.done
