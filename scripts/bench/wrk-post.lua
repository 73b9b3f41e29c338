-- The same request every client sends in the bench: a JSON login POST.
wrk.method = "POST"
wrk.body = '{"username":"user0001","password":"pass-1"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
