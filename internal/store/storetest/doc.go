// Package storetest gives tests real databases: a fresh PostgreSQL database
// per test (PostgresURL, OpenPostgres), a fresh embedded SQLite file
// (OpenSQLite), and the contract suite that every toolkit.Store
// implementation must pass (RunContract).
//
// PostgreSQL comes from ATP_TEST_DATABASE_URL when it is set (the role
// needs CREATEDB). Otherwise the first test that asks starts one
// throwaway server for the whole test binary from initdb and postgres on
// PATH (or /usr/lib/postgresql/*/bin), in a temporary directory, on a free
// loopback port, with fsync off, as the user "postgres" (or "nobody")
// when the tests run as root. A template database is migrated once; each
// test gets its own copy (CREATE DATABASE … TEMPLATE), dropped when the
// test ends.
//
// A package that uses PostgreSQL should stop that server when its tests
// end:
//
//	func TestMain(m *testing.M) { storetest.Main(m) }
//
// Without it the server still dies with the test binary (it gets SIGQUIT
// when its parent exits), but its temporary directory is left behind.
//
// When PostgreSQL cannot be had (no ATP_TEST_DATABASE_URL and no
// binaries), tests skip with a message saying so; with CI set in the
// environment they fail instead, so that a CI run never passes by
// skipping.
//
// This package is for tests only: it imports testing, and production code
// must not import it. It may import internal/store and internal/toolkit,
// never internal/api.
package storetest
