"""LeadGenius Pro API sandbox: SPEC Part A over local HTTP, documented quirks included.

Layout (moto style): `store.py` holds the state and the API operations and raises the typed
errors of `errors.py`; `app.py` is the thin starlette layer (`create_app(config)`); `faults.py`,
`ratelimit.py`, `tokens.py` and `persist.py` are the pure pieces it uses.

Admin API (`/__admin/*`: no auth, never rate-limited, never faulted, never counted in stats):

- `POST /__admin/reset` — wipe data, faults, stats and budgets; restore the config and the
  `--faults` rules the server was started with; the two tenants always exist.
- `POST /__admin/seed` `{"tenant": email|company_id = demo, "client": name|slug = "Acme Corp",
  "n": 100, "table": "enrich"|"source", "start": 0}` -> `{"client_id", "created"}`; emails are
  `lead{start+i}@example.com`; the client is created when missing.
- `GET /__admin/config`, `PUT /__admin/config` {partial SandboxConfig} -> full config (400 on
  unknown keys or bad values; `rate_window_s` is a hidden knob for fast tests; `db_path` is fixed).
- `GET|POST|DELETE /__admin/faults` — `{"kind": "429"|"500"|"503"|"drop"|"slow"|"batch_keep", "next": N}`
  or `{"kind", "probability": p, "seed": s}`, optional `"route": "POST /api/leads"` (or a bare path
  or method), `"query": {"nextToken": t}` (only calls with those parameters; null = absent: a fault
  in front of one page, not "whichever request comes next"), `"slow_ms"` (2000), `"retry_after"` (1),
  `"keep_ratio"` (0.5: the share of a batch delete's leads that `batch_keep` keeps while answering
  the full count). Rules are checked in order; first to fire wins.
- `GET /__admin/stats` -> `{"total", "requests": {"GET /api/leads": {"200": n, "drop": n}},
  "quirk_500": {quirk: n}, "injected": {kind: n}, "silently_dropped", "batch_not_persisted",
  "batch_delete_kept", "rate_limited"}`.
- `GET /__admin/state[?company_id=&client_id=]` -> `{"tenants", "clients", "leads", "source_leads"}`.
- `POST /__admin/clock` `{"advance": seconds}` — move the sandbox clock (token expiry, rate windows).

Rate limit headers: every rate-limited answer (all of `/api` except `/api/auth*`) carries
`X-RateLimit-Limit/Remaining/Reset`; with `rate_limit_per_min = 0` (unlimited) the limit shown is
1,000,000 so a client never finds the headers missing.

`drop`: the server closes the TCP connection without answering; httpx raises
`RemoteProtocolError` ("Server disconnected without sending a response"), requests raises
`ConnectionError` (RemoteDisconnected).
"""
