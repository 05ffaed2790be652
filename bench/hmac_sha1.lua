-- HMAC-SHA1 and base64 in LuaJIT (wrk), so each request can carry a fresh, valid X-Twilio-Signature.
local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rol, lshift, rshift, tobit = bit.rol, bit.lshift, bit.rshift, bit.tobit
local byte, char, rep, sub, concat = string.byte, string.char, string.rep, string.sub, table.concat

local M = {}

local function be32(n)
  return char(band(rshift(n, 24), 255), band(rshift(n, 16), 255), band(rshift(n, 8), 255), band(n, 255))
end

function M.sha1(message)
  local h0, h1, h2, h3, h4 = tobit(0x67452301), tobit(0xEFCDAB89), tobit(0x98BADCFE), tobit(0x10325476), tobit(0xC3D2E1F0)
  local length = #message
  local bits_high = math.floor(length * 8 / 4294967296)
  local bits_low = (length * 8) % 4294967296
  message = message .. "\128" .. rep("\0", (55 - length) % 64) .. be32(bits_high) .. be32(tobit(bits_low))
  local w = {}
  for chunk = 1, #message, 64 do
    for i = 0, 15 do
      local a, b, c, d = byte(message, chunk + i * 4, chunk + i * 4 + 3)
      w[i] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
    end
    for i = 16, 79 do
      w[i] = rol(bxor(w[i - 3], w[i - 8], w[i - 14], w[i - 16]), 1)
    end
    local a, b, c, d, e = h0, h1, h2, h3, h4
    for i = 0, 79 do
      local f, k
      if i < 20 then
        f, k = bor(band(b, c), band(bnot(b), d)), 0x5A827999
      elseif i < 40 then
        f, k = bxor(b, c, d), 0x6ED9EBA1
      elseif i < 60 then
        f, k = bor(band(b, c), band(b, d), band(c, d)), 0x8F1BBCDC
      else
        f, k = bxor(b, c, d), 0xCA62C1D6
      end
      local temp = tobit(rol(a, 5) + f + e + k + w[i])
      e, d, c, b, a = d, c, rol(b, 30), a, temp
    end
    h0, h1, h2, h3, h4 = tobit(h0 + a), tobit(h1 + b), tobit(h2 + c), tobit(h3 + d), tobit(h4 + e)
  end
  return be32(h0) .. be32(h1) .. be32(h2) .. be32(h3) .. be32(h4)
end

local function xor_pad(key, value)
  local out = {}
  for i = 1, 64 do
    out[i] = char(bxor(byte(key, i) or 0, value))
  end
  return concat(out)
end

function M.hmac_sha1(key, message)
  if #key > 64 then key = M.sha1(key) end
  return M.sha1(xor_pad(key, 0x5c) .. M.sha1(xor_pad(key, 0x36) .. message))
end

local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

function M.base64(data)
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = byte(data, i, i + 2)
    local n = lshift(a, 16) + lshift(b or 0, 8) + (c or 0)
    local s1, s2 = rshift(n, 18) + 1, band(rshift(n, 12), 63) + 1
    local s3, s4 = band(rshift(n, 6), 63) + 1, band(n, 63) + 1
    out[#out + 1] = sub(alphabet, s1, s1) .. sub(alphabet, s2, s2)
      .. (b and sub(alphabet, s3, s3) or "=") .. (c and sub(alphabet, s4, s4) or "=")
  end
  return concat(out)
end

return M
