package main

import (
	"bufio"
	"bytes"
	"runtime/debug"
	"strconv"
	"strings"
)

// defaultGCPercent is the GOGC the server runs with when the environment
// sets none. Executions allocate a lot of short-lived garbage (a goja VM
// per execution and per js tool call) over a small live heap, so with
// Go's default of 100 the collector runs a hundred times a second or more
// under load: 400 measured 25-40 % more executions per second on the
// monday load test than 100, and 800 another 10-20 % (BENCHMARKS.md), for
// a heap up to nine times the live one. The memory limit below keeps that
// in check.
const defaultGCPercent = 800

// Where the memory the heap may use is read: the cgroup v2 memory limit
// of the container the process runs in ("max" when there is none), else
// the machine's memory.
const (
	cgroupMemoryMax = "/sys/fs/cgroup/memory.max"
	procMeminfo     = "/proc/meminfo"
)

// Shares of that memory the Go heap is steered to stay under (GOMEMLIMIT,
// a soft limit: past it the collector runs more often, nothing fails).
// In a container the rest is for goroutine stacks, the runtime and
// SQLite's page cache; on a whole machine, for everything else on it.
const (
	cgroupMemoryShare  = 0.9
	machineMemoryShare = 0.5
)

// gcSettings is what tuneGC decided; zero fields were left to the runtime.
type gcSettings struct {
	gcPercent   int   // set with debug.SetGCPercent
	memoryLimit int64 // set with debug.SetMemoryLimit, in bytes
}

// tuneGC applies the server's garbage-collector defaults where the
// environment leaves them to Go: GOGC (defaultGCPercent) and GOMEMLIMIT
// (cgroupMemoryShare of the cgroup memory limit, else machineMemoryShare
// of the machine's memory). A GOGC or GOMEMLIMIT in the environment, which
// the Go runtime has already applied at start-up, always wins.
func tuneGC(getenv func(string) string, readFile func(string) ([]byte, error)) gcSettings {
	var s gcSettings
	if getenv("GOGC") == "" {
		s.gcPercent = defaultGCPercent
		debug.SetGCPercent(s.gcPercent)
	}
	if getenv("GOMEMLIMIT") == "" {
		if limit := cgroupMemoryLimit(readFile); limit > 0 {
			s.memoryLimit = int64(float64(limit) * cgroupMemoryShare)
		} else if total := machineMemory(readFile); total > 0 {
			s.memoryLimit = int64(float64(total) * machineMemoryShare)
		}
		if s.memoryLimit > 0 {
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

// machineMemory returns MemTotal of /proc/meminfo in bytes, or 0 when it
// cannot be read.
func machineMemory(readFile func(string) ([]byte, error)) int64 {
	b, err := readFile(procMeminfo)
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 3 && f[0] == "MemTotal:" && f[2] == "kB" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil || kb <= 0 {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
