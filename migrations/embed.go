package migrations

import (
	"embed"
	"io/fs"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// Postgres and SQLite are the migrations of each engine, named
// NNNNNN_title.up.sql and NNNNNN_title.down.sql at their root.
var (
	Postgres = sub("postgres")
	SQLite   = sub("sqlite")
)

// sub cannot fail for a directory the embed pattern names (the build
// fails if it matches nothing), so a failure here is a broken build.
func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		panic("migrations: " + err.Error())
	}
	return f
}
