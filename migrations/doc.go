// Package migrations holds the SQL schema of atp-server, one numbered up/down
// pair per change and per engine, embedded into the binary so that a single
// file is all an operator deploys.
//
// The two directories describe the same schema: postgres/ for PostgreSQL
// (timestamptz, jsonb, bytea) and sqlite/ for the embedded engine (STRICT
// tables, timestamps as fixed-width RFC 3339 UTC text with microseconds so
// that they sort and compare as text, JSON as text checked by json_valid).
// Every change gets a new number in both directories, even if one engine
// needs no SQL for it, so that versions mean the same thing everywhere.
//
// A migration that has been merged is never edited: write a new one.
//
// This package holds data only; it must not import anything from
// internal/. internal/store runs the migrations with golang-migrate.
package migrations
