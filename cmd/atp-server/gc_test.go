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

	env := func(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }
	cgroup := func(content string, err error) func(string) ([]byte, error) {
		return func(path string) ([]byte, error) {
			if path != cgroupMemoryMax {
				t.Errorf("read %s, want %s", path, cgroupMemoryMax)
			}
			return []byte(content), err
		}
	}
	for _, tc := range []struct {
		name     string
		env      map[string]string
		cgroup   func(string) ([]byte, error)
		want     gcSettings
		wantGOGC int
	}{
		{"defaults, no cgroup", nil, cgroup("", fs.ErrNotExist), gcSettings{gcPercent: 400}, 400},
		{"unlimited cgroup", nil, cgroup("max\n", nil), gcSettings{gcPercent: 400}, 400},
		{"cgroup limit", nil, cgroup("1073741824\n", nil), gcSettings{gcPercent: 400, memoryLimit: 966367641}, 400},
		{"garbage in memory.max", nil, cgroup("lots", nil), gcSettings{gcPercent: 400}, 400},
		{"unreadable memory.max", nil, cgroup("", errors.New("permission denied")), gcSettings{gcPercent: 400}, 400},
		{"GOGC set wins", map[string]string{"GOGC": "100"}, cgroup("max", nil), gcSettings{}, 100},
		{"GOMEMLIMIT set wins", map[string]string{"GOMEMLIMIT": "1GiB"}, cgroup("1073741824", nil), gcSettings{gcPercent: 400}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(1 << 62)
			got := tuneGC(env(tc.env), tc.cgroup)
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
