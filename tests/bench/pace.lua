-- wrk at a fixed rate below the maximum (tests/bench/server.py): each connection waits the
-- given milliseconds after a response before sending its next request.
local pause_ms = 0

function init(args)
  pause_ms = tonumber(args[1]) or 0
end

function delay()
  return math.max(0, math.floor(pause_ms))
end
