//go:build !unix

package storetest

import "context"

// startLocalServer: running a throwaway server needs Unix process control
// (credentials, process groups); elsewhere, point the tests at a server.
func startLocalServer(ctx context.Context) (s *pgServer, skip string, err error) {
	return nil, "a throwaway PostgreSQL can only be started on Unix: set " + EnvDatabaseURL, nil
}
