package main

import (
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is the GOGC the server runs with when the environment
// sets none. Executions allocate a lot of short-lived garbage (a goja VM
// per execution and per js tool call) over a small live heap, so with
// Go's default of 100 the collector runs dozens of times a second under
// load: 400 measured about 30 % more executions per second on the monday
// load test (BENCHMARKS.md), for a heap up to five times the live one.
// The memory limit below keeps that in check where one is known.
const defaultGCPercent = 400

// cgroupMemoryMax is where cgroup v2 publishes the memory limit of the
// container the process runs in ("max" when there is none).
const cgroupMemoryMax = "/sys/fs/cgroup/memory.max"

// memoryLimitShare is the share of the container's memory limit the Go
// heap is steered to stay under (GOMEMLIMIT): the rest is for goroutine
// stacks, the runtime and SQLite's page cache.
const memoryLimitShare = 0.9

// gcSettings is what tuneGC decided; zero fields were left to the runtime.
type gcSettings struct {
	gcPercent   int   // set with debug.SetGCPercent
	memoryLimit int64 // set with debug.SetMemoryLimit, in bytes
}

// tuneGC applies the server's garbage-collector defaults where the
// environment leaves them to Go: GOGC (defaultGCPercent) and GOMEMLIMIT
// (memoryLimitShare of the cgroup memory limit, when the process runs
// under one). A GOGC or GOMEMLIMIT in the environment, which the Go runtime
// has already applied at start-up, always wins.
func tuneGC(getenv func(string) string, readFile func(string) ([]byte, error)) gcSettings {
	var s gcSettings
	if getenv("GOGC") == "" {
		s.gcPercent = defaultGCPercent
		debug.SetGCPercent(s.gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		if limit := cgroupMemoryLimit(readFile); limit > 0 {
			s.memoryLimit = int64(float64(limit) * memoryLimitShare)
			debug.SetMemoryLimit(s.memoryLimit)
		}
	}
	return s
}

// cgroupMemoryLimit returns the cgroup v2 memory limit in bytes, or 0 when
// there is none or it cannot be read.
func cgroupMemoryLimit(readFile func(string) ([]byte, error)) int64 {
	b, err := readFile(cgroupMemoryMax)
	if err != nil {
		return 0
	}
	v := strings.TrimSpace(string(b))
	if v == "max" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
