-- wrk script: POST a credit or debit of a random value to a random client (1..5),
-- like the contest's load scenarios.
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local id = math.random(1, 5)
  local tipo = (math.random() < 0.66) and "d" or "c"
  local body = string.format('{"valor": %d, "tipo": "%s", "descricao": "bench"}', math.random(1, 10000), tipo)
  return wrk.format(nil, "/clientes/" .. id .. "/transacoes", nil, body)
end
