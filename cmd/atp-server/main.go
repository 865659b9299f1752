// Command atp-server serves the Agent Tool Protocol surfaces and the admin API.
// Everything is built and torn down in run; main only wires the process to it.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
)

func main() {
	// Nothing ever reads a heap profile of this process (it serves no
	// pprof), and sampling one costs a stack unwind every 512 KiB
	// allocated: through goja's deep stacks, several percent of the CPU
	// of an execution.
	runtime.MemProfileRate = 0
	tuneGC(os.Getenv, os.ReadFile)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	context.AfterFunc(ctx, stop) // after the first signal, a second one kills at once
	if err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "atp-server:", err)
		os.Exit(1)
	}
}
