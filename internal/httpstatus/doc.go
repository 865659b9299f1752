// Package httpstatus is the one table from a domain error kind
// (toolkit.Kind) to an HTTP status, shared by every HTTP surface: the admin
// and native API and the monday and ChatATP protocols answer a kind with
// the same status, each in its own error shape.
//
// It imports only internal/toolkit and net/http; the surfaces import it.
package httpstatus
