//go:build unix && !linux

package storetest

import "syscall"

// processAttrs: without Linux's Pdeathsig, a server outlives a test binary
// that is killed before Main stops it.
func processAttrs(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Credential: cred, Setpgid: true}
}
