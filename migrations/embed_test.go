package migrations

import (
	"io/fs"
	"regexp"
	"slices"
	"testing"
)

// TestEnginesMatch: both engines have the same numbered migrations, each
// with an up and a down file, so that a version means the same everywhere.
func TestEnginesMatch(t *testing.T) {
	t.Parallel()
	names := func(fsys fs.FS) []string {
		t.Helper()
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	pg, lite := names(Postgres), names(SQLite)
	if !slices.Equal(pg, lite) {
		t.Fatalf("postgres has %v, sqlite has %v", pg, lite)
	}
	valid := regexp.MustCompile(`^(\d{6})_[a-z0-9_]+\.(up|down)\.sql$`)
	ups, downs := map[string]bool{}, map[string]bool{}
	for _, n := range pg {
		m := valid.FindStringSubmatch(n)
		if m == nil {
			t.Errorf("%s: want NNNNNN_title.up.sql or NNNNNN_title.down.sql", n)
			continue
		}
		if m[2] == "up" {
			ups[m[1]] = true
		} else {
			downs[m[1]] = true
		}
	}
	for v := range ups {
		if !downs[v] {
			t.Errorf("migration %s has no down file", v)
		}
	}
	for v := range downs {
		if !ups[v] {
			t.Errorf("migration %s has no up file", v)
		}
	}
}
