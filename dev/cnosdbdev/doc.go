// Package cnosdbdev is an in-memory server that answers CnosDB's HTTP API
// the way CnosDB 2.4.3 does (or, in 2.3 mode, CnosDB 2.3.4–2.3.5), for the
// tests, demos and benchmarks of this project on machines where CnosDB
// cannot run. It also provides a fault-injection layer that works in front
// of the emulator and in front of a real CnosDB alike.
//
// # What is emulated
//
// Routes: GET|HEAD /api/v1/ping, POST /api/v1/write, POST /api/v1/sql and
// the mock InfluxDB endpoint POST /write; other methods get 405, other
// paths 404, both with empty bodies. Requests are checked in CnosDB's
// order: Content-Length (missing: 500, larger than the limit: 413), the
// Authorization header (missing: 400 000000), the query string, the
// Content-Encoding (unknown: 400 040005, undecodable: 400 040013), the
// credentials (400 040006, 422 010016), UTF-8 (422 040015), the line
// protocol (422 040004, with the byte positions of CnosDB's parser), then
// the database (422 030017), time buckets and TTL (422 030034), and column
// types (422 050014). Error bodies are exactly
// {"error_code":"…","error_message":"…"} with Content-Type
// application/json; an accepted write is 200 with an empty body.
//
// The line-protocol parsers are ports of CnosDB's own: the 2.4.3 state
// machine (strict escapes, quirks included) and the lenient search-based
// parser of 2.3. ParseLineProtocol exposes them, for example to check a
// serializer's output against CnosDB's grammar.
//
// Storage keeps rows per table keyed by tag set and time; a later write of
// the same row replaces only the fields it carries. A request is atomic:
// everything is checked before anything is stored (a real CnosDB may store
// the part of a request that falls into other time buckets).
//
// The SQL subset is listed in sql.go. Answers follow the Accept header:
// CSV by default, JSON, ND-JSON, TSV or an ASCII table, formatted like the
// Arrow writers CnosDB uses (DOUBLE 1 is "1.0", CSV times always have nine
// fraction digits, JSON objects have their keys in byte order).
//
// # Choices where CnosDB's behaviour is inferred
//
// Answers that were deduced from CnosDB's code rather than seen in its
// tests are gathered in modes.go, next to the differences between 2.4 and
// 2.3. Among them: a chunked write gets 500 with an empty body; a type
// conflict with an existing column is 050014 "Apply engine failed:
// DataSchemaError: Column 'x' type error, found I64 expected F64" in 2.4
// and 020004 in 2.3; COUNT(*) in 2.4 mode counts overwritten points (as
// 2.4.3's statistics may) while exact_count(*) does not; input on which
// CnosDB's parser panics (an empty field value such as "m f=,g=1")
// closes the connection without an answer.
//
// Where CnosDB leaves an order unspecified, the emulator picks a stable
// one, documented where it is made: rows without ORDER BY come series by
// series (in the order of their tag sets), each in time order (sqlselect.go).
// An unknown table in a query is 010001 "Datafusion: Error during
// planning: Table not found, tenant: cnosdb db: public, table: t", as in
// CnosDB's e2e tests; a query without rows still has its CSV header.
//
// # Faults
//
// Faults wraps any http.Handler: Respond answers the next n requests to a
// path with a canned status and body, SetLatency delays requests, Drop
// closes connections without answering, Refuse closes the listening
// socket of a Front (connections are refused) and opens it again on the
// same port. A Front is a TCP listener serving a backend behind Faults;
// NewProxy makes a backend that forwards to a real CnosDB unchanged.
//
// # Admin API
//
// NewAdminHandler serves a small JSON API, meant for a separate listener,
// to drive the faults of a Front from another process:
//
//	GET /stats
//	  {"server": {"requests": 3, "write_requests": 2, "sql_requests": 1,
//	              "lines_accepted": 10, "lines_rejected": 1, "bytes": 420},
//	   "faults": {"requests": 3, "responded": 1, "dropped": 0, "passed": 2,
//	              "paths": {"/api/v1/write": 2, "/api/v1/sql": 1}},
//	   "state":  {"responses": [], "latency": "0s", "refuse": false, "drop": false},
//	   "target": {"url": "http://127.0.0.1:8902", "mode": "2.4",
//	              "version": "2.4.3, revision: dev, build_time: 2025-01-01T00:00:00Z"}}
//	  ("server", "mode" and "version" are absent when the backend is a proxy)
//
//	GET /faults
//	  the "state" object above
//
//	POST /faults
//	  {"respond": {"path": "/api/v1/write", "status": 422,
//	               "body": "{\"error_code\":\"050033\",\"error_message\":\"Memory Exhausted Retry Later\"}",
//	               "count": 3},
//	   "latency": "250ms",
//	   "drop": true,
//	   "refuse": true}
//	  Every member is optional, at least one is required; the present ones
//	  are applied in the order respond, latency, drop, refuse. "path" may be
//	  "*" for every path; "count" < 0 means until cleared; "latency" is a Go
//	  duration ("0s" removes it). Answer: 200 with the new state, or 400
//	  {"error": "…"} for a malformed request.
//
//	DELETE /faults
//	  removes every fault (and listens again if refusing); answer: the state.
package cnosdbdev
