-- wrk: the mixed clinic scenario over the physician's care team: 70 % chart reads
-- (Patient by id), 20 % family-name searches, 10 % Observation creates.
local ids, families = {}, {}
local token = ""
function init(args)
  for line in io.lines(args[1] .. "/team.txt") do ids[#ids + 1] = line end
  for line in io.lines(args[1] .. "/families.txt") do families[#families + 1] = line end
  token = io.open(args[1] .. "/token.txt"):read("*l")
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end
function request()
  local auth = "Bearer " .. token
  local roll = math.random(100)
  local k = math.random(#ids)
  if roll <= 70 then
    return wrk.format("GET", "/fhir/Patient/" .. ids[k], { ["Authorization"] = auth })
  elseif roll <= 90 then
    return wrk.format("GET", "/fhir/Patient?family=" .. families[k], { ["Authorization"] = auth })
  end
  local body = '{"resourceType":"Observation","status":"final","code":{"text":"Body weight (fake)"},'
    .. '"subject":{"reference":"Patient/' .. ids[k] .. '"},"valueQuantity":{"value":71,"unit":"kg"}}'
  return wrk.format("POST", "/fhir/Observation",
    { ["Authorization"] = auth, ["Content-Type"] = "application/fhir+json" }, body)
end
