// Package inproc holds Go benchmarks of the monday surface in process: the
// handler stack of cmd/atp-server (api.NewHandler with the monday surface
// behind it, the execution engine, toolkit.Service with the js runner, the
// embedded SQLite store, a JSON logger at info level writing to io.Discard)
// is called with ServeHTTP and no network, so ns/op is the server's own
// time for one POST /api/execute and a CPU profile shows where it goes:
//
//	go test -run '^$' -bench . -benchmem ./bench/inproc
//	go test -run '^$' -bench 'MondayExecute/toolcall-c16' -cpuprofile cpu.out ./bench/inproc
//	go tool pprof -top -cum inproc.test cpu.out
//
// The wiring mirrors serve in cmd/atp-server/run.go; keep the two in step.
// The package has no code outside its tests; it may import any internal
// package, and nothing imports it.
package inproc
