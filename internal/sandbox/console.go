package sandbox

import (
	"fmt"
	"strings"

	"github.com/dop251/goja"
)

// Console output is bounded per run: a loop around console.log must not
// flood the server log.
const (
	maxConsoleLines     = 200
	maxConsoleBytes     = 64 << 10
	maxConsoleLineBytes = 4 << 10
)

type consoleState struct {
	lines, bytes int
	truncated    bool
}

// installConsole defines the global console (writable, configurable, not
// enumerable), built on first use (defineLazy): most runs never log.
func (e *execution) installConsole() error {
	return e.defineLazy(e.vm.GlobalObject(), "console", false, e.newConsole)
}

// newConsole builds console.log/info/debug/trace/warn/error. Its methods
// are data properties of a plain object, defined from Go, so nothing the
// code put on Object.prototype runs.
func (e *execution) newConsole() goja.Value {
	c := e.vm.NewObject()
	for _, m := range []struct{ name, level string }{
		{"log", "info"}, {"info", "info"}, {"debug", "debug"}, {"trace", "debug"}, {"warn", "warn"}, {"error", "error"},
	} {
		if err := c.DefineDataProperty(m.name, e.vm.ToValue(e.consoleMethod(m.level)), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE); err != nil {
			panic(err)
		}
	}
	return c
}

func (e *execution) consoleMethod(level string) func(goja.FunctionCall) goja.Value {
	return func(call goja.FunctionCall) goja.Value {
		// Without a sink nothing is formatted: formatting may run the
		// code's own toJSON and getters, which is wasted work then.
		if e.host.Console == nil || e.console.truncated {
			return goja.Undefined()
		}
		var b strings.Builder
		for i, a := range call.Arguments {
			if b.Len() > maxConsoleLineBytes {
				break
			}
			if i > 0 {
				b.WriteByte(' ')
			}
			if goja.IsString(a) {
				b.WriteString(a.String())
				continue
			}
			b.WriteString(e.formatArg(a))
		}
		e.emit(level, truncate(b.String(), maxConsoleLineBytes))
		return goja.Undefined()
	}
}

func (e *execution) emit(level, msg string) {
	if e.console.lines >= maxConsoleLines || e.console.bytes+len(msg) > maxConsoleBytes {
		e.console.truncated = true
		e.host.Console("warn", fmt.Sprintf("console output truncated: a run may print at most %d lines and %d bytes", maxConsoleLines, maxConsoleBytes))
		return
	}
	e.console.lines++
	e.console.bytes += len(msg)
	e.host.Console(level, msg)
}
