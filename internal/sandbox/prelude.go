package sandbox

import (
	"fmt"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

// Prelude is trusted JavaScript that builds globals for the code on top
// of host functions (see Host.Prelude). It is compiled once and may run in
// many VMs at once.
//
// It is one function expression, called with two arguments, host (the
// object built from Host.PreludeHost) and js (helpers, below), that
// returns an object with one builder function per name in
// Host.PreludeGlobals. The prelude runs when the code first uses one of
// those globals, and then that global's builder: the global (writable,
// configurable, not enumerable) holds what the builder returns, exactly
// as if the prelude had built it before the code ran. A run that never
// uses them never pays for them.
//
// So the prelude may run after the code has replaced built-ins (Object,
// String, Object.prototype's methods, getters and setters on
// Object.prototype, Array.prototype). It must rely on syntax and on js
// only, which the code cannot reach or change:
//
//   - js.define(obj, key, value): a writable, enumerable, configurable data
//     property, also for keys like __proto__;
//   - js.lazy(obj, key, build): the same, holding build()'s value, built on
//     first use (before that the property is an accessor);
//   - js.string(v): String(v);
//   - js.hasOwn(obj, key): Object.prototype.hasOwnProperty.call(obj, key).
//
// Object and array literals are safe (they define, not assign); method
// calls on built-in prototypes are not. What the prelude or a builder
// throws is a fault of the host: the run fails with an internal error.
type Prelude struct {
	prg *goja.Program
}

// CompilePrelude compiles src, which must be exactly one function
// expression, e.g. `(function (host, js) { 'use strict'; return {x: function () { … }}; })`.
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
