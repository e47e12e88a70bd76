-- wrk at a fixed rate below the maximum (tests/bench/server.py): after each response a
-- connection waits a random time, uniform between half and one and a half times the given
-- milliseconds, so the connections do not fall into step and arrive in bursts.
local pause_ms = 0

function init(args)
  pause_ms = tonumber(args[1]) or 0
  math.randomseed(os.time())
end

function delay()
  return math.floor((0.5 + math.random()) * math.max(0, pause_ms))
end
