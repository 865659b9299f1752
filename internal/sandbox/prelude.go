package sandbox

import (
	"fmt"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

// Prelude is trusted JavaScript that runs before a run's code (see
// Host.Prelude). It is compiled once and may run in many VMs at once.
type Prelude struct {
	prg *goja.Program
}

// CompilePrelude compiles src, which must be exactly one function
// expression, e.g. `(function (host) { 'use strict'; globalThis.x = … })`.
// name appears in the positions of errors it throws.
func CompilePrelude(name, src string) (*Prelude, error) {
	file, err := parser.ParseFile(nil, name, src, 0, parserOptions...)
	if err != nil {
		return nil, fmt.Errorf("sandbox: prelude %s: %w", name, err)
	}
	if !isFunctionExpression(file) {
		return nil, fmt.Errorf("sandbox: prelude %s: not one function expression", name)
	}
	prg, err := goja.CompileAST(file, true)
	if err != nil {
		return nil, fmt.Errorf("sandbox: prelude %s: %w", name, err)
	}
	return &Prelude{prg: prg}, nil
}

func isFunctionExpression(p *ast.Program) bool {
	if len(p.Body) != 1 {
		return false
	}
	st, ok := p.Body[0].(*ast.ExpressionStatement)
	if !ok {
		return false
	}
	_, ok = st.Expression.(*ast.FunctionLiteral)
	return ok
}

// runPrelude calls the prelude with the object built from
// Host.PreludeHost. A failure is the host's fault, not the code's.
func (e *execution) runPrelude() error {
	v, err := e.vm.RunProgram(e.host.Prelude.prg)
	if err != nil {
		return fmt.Errorf("sandbox: prelude: %w", err)
	}
	fn, ok := goja.AssertFunction(v)
	if !ok {
		return fmt.Errorf("sandbox: prelude: not a function")
	}
	hostObj, err := e.hostValue("host", e.host.PreludeHost)
	if err != nil {
		return err
	}
	if _, err := fn(goja.Undefined(), hostObj); err != nil {
		return fmt.Errorf("sandbox: prelude: %w", err)
	}
	return nil
}
