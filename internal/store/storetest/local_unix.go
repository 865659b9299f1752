//go:build unix

package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// findPGBinaries looks on PATH, then in the Debian layout.
func findPGBinaries() (initdb, postgres string, ok bool) {
	if p, err := exec.LookPath("initdb"); err == nil {
		// The postgres next to initdb, so that both are of one version.
		if q := filepath.Join(filepath.Dir(p), "postgres"); isExecutable(q) {
			return p, q, true
		}
		if q, err := exec.LookPath("postgres"); err == nil {
			return p, q, true
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) }) // newest first
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "postgres")
		if isExecutable(i) && isExecutable(p) {
			return i, p, true
		}
	}
	return "", "", false
}

func pgMajor(binDir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return n
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// startLocalServer runs initdb and postgres in a new temporary directory.
// skip is set when there are no PostgreSQL binaries.
func startLocalServer(ctx context.Context) (s *pgServer, skip string, err error) {
	initdb, postgres, ok := findPGBinaries()
	if !ok {
		return nil, "PostgreSQL is not available: set " + EnvDatabaseURL + " or put initdb and postgres on PATH", nil
	}
	cred, err := pgCredential()
	if err != nil {
		return nil, "", err
	}
	dir, err := os.MkdirTemp("", "atp-pgtest-")
	if err != nil {
		return nil, "", err
	}
	fail := func(err error) (*pgServer, string, error) {
		_ = os.RemoveAll(dir)
		return nil, "", err
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(err)
		}
	}
	data := filepath.Join(dir, "data")
	// -N: no fsync; trust auth and the C locale keep initdb quick.
	initCmd := pgCommand(ctx, initdb, cred, dir,
		"-D", data, "--auth=trust", "-U", "postgres", "-N", "-E", "UTF8", "--locale=C")
	if out, err := initCmd.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("initdb: %w\n%s", err, out))
	}
	// A port found free may be taken before postgres binds it (another
	// test binary doing the same); then try another.
	for attempt := 1; ; attempt++ {
		s, retry, err := runPostgres(ctx, postgres, cred, dir, data)
		if err == nil {
			return s, "", nil
		}
		if !retry || attempt == 3 {
			return fail(err)
		}
	}
}

func runPostgres(ctx context.Context, postgres string, cred *syscall.Credential, dir, data string) (s *pgServer, retry bool, err error) {
	port, err := freePort()
	if err != nil {
		return nil, false, err
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, false, err
	}
	defer logFile.Close() // the child has its own copy
	// Not bound to ctx: the server outlives startup. The tuning trades
	// durability, which throwaway data does not need, for speed.
	cmd := pgCommand(context.Background(), postgres, cred, dir,
		"-D", data, "-p", strconv.Itoa(port), "-k", dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=300", "-c", "shared_buffers=32MB")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		return nil, false, fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s = &pgServer{
		base: url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
			Path: "/postgres", RawQuery: "sslmode=disable"},
		dir: dir, cmd: cmd, exited: exited,
	}
	for {
		conn, err := pgx.Connect(ctx, s.base.String())
		if err == nil {
			_ = conn.Close(ctx)
			return s, false, nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return nil, bytes.Contains(log, []byte("could not bind")),
				fmt.Errorf("postgres exited during startup:\n%s", log)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			<-exited
			log, _ := os.ReadFile(logPath)
			return nil, false, fmt.Errorf("postgres did not accept connections in time:\n%s", log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// pgCommand prepares a PostgreSQL program run as cred (nil: as ourselves),
// in dir, with a clean environment, in a process group of its own (a ^C in
// the terminal reaches the test, which then stops the server in order).
// On Linux it also dies with this process: the kernel sends SIGQUIT
// (PostgreSQL's immediate shutdown) when we exit, even if we are killed
// before Main can stop it.
func pgCommand(ctx context.Context, path string, cred *syscall.Credential, dir string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = dir // the test's working directory may not be readable by cred
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "LC_ALL=C", "TZ=UTC"}
	cmd.SysProcAttr = processAttrs(cred)
	return cmd
}

// pgCredential returns whom to run PostgreSQL as: nil (ourselves) unless we
// are root, which PostgreSQL refuses; then the user postgres, else nobody.
func pgCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
	}
	return nil, errors.New("running as root, and neither the user postgres nor nobody exists to run PostgreSQL as")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
