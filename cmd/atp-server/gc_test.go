package main

import (
	"errors"
	"io/fs"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	// The settings are process-wide: restore the test binary's own.
	gcPercent := debug.SetGCPercent(100)
	memLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(gcPercent)
		debug.SetMemoryLimit(memLimit)
	})

	const meminfo = "MemTotal:       24684132 kB\nMemFree:        23000000 kB\n"
	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	files := func(cgroup string, cgroupErr error, mem string) func(string) ([]byte, error) {
		return func(path string) ([]byte, error) {
			switch path {
			case cgroupMemoryMax:
				return []byte(cgroup), cgroupErr
			case procMeminfo:
				if mem == "" {
					return nil, fs.ErrNotExist
				}
				return []byte(mem), nil
			}
			t.Errorf("read %s", path)
			return nil, fs.ErrNotExist
		}
	}
	half := int64(24684132<<10) / 2
	for _, tc := range []struct {
		name     string
		env      map[string]string
		files    func(string) ([]byte, error)
		want     gcSettings
		wantGOGC int
	}{
		{"no cgroup: half the machine", nil, files("", fs.ErrNotExist, meminfo), gcSettings{gcPercent: 800, memoryLimit: half}, 800},
		{"unlimited cgroup: half the machine", nil, files("max\n", nil, meminfo), gcSettings{gcPercent: 800, memoryLimit: half}, 800},
		{"cgroup limit", nil, files("1073741824\n", nil, meminfo), gcSettings{gcPercent: 800, memoryLimit: 966367641}, 800},
		{"garbage in memory.max", nil, files("lots", nil, meminfo), gcSettings{gcPercent: 800, memoryLimit: half}, 800},
		{"unreadable memory.max", nil, files("", errors.New("permission denied"), meminfo), gcSettings{gcPercent: 800, memoryLimit: half}, 800},
		{"nothing readable", nil, files("", fs.ErrNotExist, ""), gcSettings{gcPercent: 800}, 800},
		{"garbage in meminfo", nil, files("max", nil, "MemTotal: lots kB\n"), gcSettings{gcPercent: 800}, 800},
		{"GOGC set wins", map[string]string{"GOGC": "100"}, files("max", nil, meminfo), gcSettings{memoryLimit: half}, 100},
		{"GOMEMLIMIT set wins", map[string]string{"GOMEMLIMIT": "1GiB"}, files("1073741824", nil, meminfo), gcSettings{gcPercent: 800}, 800},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(1 << 62)
			got := tuneGC(env(tc.env), tc.files)
			if got != tc.want {
				t.Errorf("tuneGC = %+v, want %+v", got, tc.want)
			}
			if p := debug.SetGCPercent(100); p != tc.wantGOGC {
				t.Errorf("GOGC is %d, want %d", p, tc.wantGOGC)
			}
			wantLimit := int64(1 << 62)
			if tc.want.memoryLimit > 0 {
				wantLimit = tc.want.memoryLimit
			}
			if l := debug.SetMemoryLimit(-1); l != wantLimit {
				t.Errorf("memory limit is %d, want %d", l, wantLimit)
			}
		})
	}
}
