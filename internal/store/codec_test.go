package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/atp-server/atp-server/internal/toolkit"
)

// TestExecutorRecordCoversEveryField fills every field of a toolkit.Executor
// (and its HTTPAuth) by reflection and checks that the stored form gives
// all of them back except the plaintext secret, so that a field added to
// the domain type cannot be silently dropped by the store.
func TestExecutorRecordCoversEveryField(t *testing.T) {
	t.Parallel()
	var e toolkit.Executor
	fill(reflect.ValueOf(&e).Elem())
	if e.Auth == nil || e.Auth.Secret == "" {
		t.Fatal("fill did not reach the auth")
	}
	if _, err := encodeExecutor(e); toolkit.KindOf(err) != toolkit.KindInternal || err == nil {
		t.Errorf("encoding a plaintext secret = %v, want an internal error", err)
	}
	e.Auth.Secret = ""
	b, err := encodeExecutor(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeExecutor(b)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(e, got); d != "" {
		t.Errorf("executor changed in storage (-want +got):\n%s\nstored: %s", d, b)
	}
}

// fill sets every settable field of v to a non-zero value.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("x-" + v.Type().String())
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(42)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0))
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	default:
		panic(fmt.Sprintf("fill: add a case for %s", v.Kind()))
	}
}

func TestPGTranslate(t *testing.T) {
	t.Parallel()
	domain := toolkit.Errorf(toolkit.KindInvalid, "invalid", "as is")
	for _, tc := range []struct {
		err     error
		kind    toolkit.Kind
		message string
	}{
		{pgx.ErrNoRows, toolkit.KindNotFound, `toolkit "x" not found`},
		{fmt.Errorf("wrapped: %w", pgx.ErrNoRows), toolkit.KindNotFound, `toolkit "x" not found`},
		{&pgconn.PgError{Code: "23505"}, toolkit.KindConflict, `toolkit "x" already exists`},
		{&pgconn.PgError{Code: "23503"}, toolkit.KindNotFound, `toolkit "x" refers to something that does not exist`},
		{&pgconn.PgError{Code: "23502"}, toolkit.KindInvalid, `toolkit "x": a value was rejected by the database`},
		{&pgconn.PgError{Code: "22P02"}, toolkit.KindInvalid, `toolkit "x": a value was rejected by the database`},
		{&pgconn.PgError{Code: "57014"}, toolkit.KindTimeout, "the database did not answer in time"},
		{&pgconn.PgError{Code: "57P01"}, toolkit.KindUnavailable, "the database is unavailable"},
		{&pgconn.PgError{Code: "53300"}, toolkit.KindUnavailable, "the database is unavailable"},
		{&pgconn.PgError{Code: "42P01"}, toolkit.KindInternal, "database error"},
		{context.DeadlineExceeded, toolkit.KindTimeout, "the database did not answer in time"},
		{context.Canceled, toolkit.KindInternal, "database error"},
		{errors.New("boom"), toolkit.KindInternal, "database error"},
		{domain, toolkit.KindInvalid, "as is"},
	} {
		got := pgTranslate(tc.err, `toolkit "x"`)
		var te *toolkit.Error
		if !errors.As(got, &te) {
			t.Errorf("pgTranslate(%v) = %v, not a *toolkit.Error", tc.err, got)
			continue
		}
		if te.Kind != tc.kind || te.Message != tc.message {
			t.Errorf("pgTranslate(%v) = %v %q, want %v %q", tc.err, te.Kind, te.Message, tc.kind, tc.message)
		}
		// The cause stays reachable for logs and errors.Is, except for a
		// plain not-found, which has nothing more to say.
		if tc.kind != toolkit.KindNotFound && tc.err != domain && !errors.Is(got, tc.err) {
			t.Errorf("pgTranslate(%v) lost its cause", tc.err)
		}
	}
	if pgTranslate(nil, "x") != nil {
		t.Error("pgTranslate(nil) != nil")
	}
}
