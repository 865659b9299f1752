// Command loadgen measures the capacity of a running atp-server's monday
// surface with no Node client in the loop: it speaks the monday HTTP
// protocol itself (shared/spec/monday-atp.md §3.1, §3.7), as the npm client
// would — POST /api/init once per worker with a client key in X-API-Key,
// then POST /api/execute over and over with X-Client-ID and the bearer
// token, taking the fresh token of X-ATP-Token from each answer — over
// net/http keep-alive connections.
//
//	go run ./bench/loadgen -url http://127.0.0.1:3333 -key KEY -c 32 -d 10s
//
// Each of -c workers has its own session. -key takes several client keys,
// comma-separated, and the workers are spread over them: the engine lets
// one key run 16 executions at once (execution.Config.MaxRunningPerKey),
// so more than 16 workers on one key measure its rate limit, not the
// server. Every answer must be 200 with status "completed" and the result
// -want; anything else counts as an error, by kind.
//
// It runs a warm-up (-warmup), then measures for -d or -n executions,
// whichever comes first, and prints executions/s, latency quantiles and
// errors (or JSON with -json). It talks only to loopback addresses.
//
// It imports only the standard library; nothing imports it.
package main
