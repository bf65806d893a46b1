-- wrk script: a credit of a random value to a random client (1..5). Credits are always
-- accepted, so every request does the full work (UPDATE + INSERT), like bench/apply.pgbench.
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local body = string.format('{"valor": %d, "tipo": "c", "descricao": "bench"}', math.random(1, 10000))
  return wrk.format(nil, "/clientes/" .. math.random(1, 5) .. "/transacoes", nil, body)
end
