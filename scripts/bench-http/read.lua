-- wrk: GET /fhir/Patient/{id} for ids of the physician's care team, at random.
local ids = {}
local token = ""
function init(args)
  for line in io.lines(args[1] .. "/team.txt") do ids[#ids + 1] = line end
  token = io.open(args[1] .. "/token.txt"):read("*l")
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
function request()
  local id = ids[math.random(#ids)]
  return wrk.format("GET", "/fhir/Patient/" .. id, { ["Authorization"] = "Bearer " .. token })
end
