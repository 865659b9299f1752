package sandbox

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/file"
	"github.com/dop251/goja/parser"
)

// codeFile is the file name goja gives the code in positions.
const codeFile = "code.js"

// The code is wrapped as one parenthesised async function expression. The
// header ends with a newline so that line N of the body is line N+1 of the
// wrapper (we subtract one when reporting), and the trailer starts with one so
// that a body ending in a // comment cannot swallow the closing brace.
const (
	wrapHeader     = "(async function (input, ctx) {\n"
	wrapCodeHeader = "(async function () {\n"
	wrapFooter     = "\n})"
)

// parserOptions disables source maps: by default goja resolves a
// `//# sourceMappingURL=` comment by reading that path from the local
// filesystem (os.ReadFile), which would let code probe files or hang the
// process on /dev/zero. The same options are set on every VM for eval and
// Function.
var parserOptions = []parser.Option{parser.WithDisableSourceMaps}

// Program is code compiled once and runnable many times, concurrently, in
// separate runs (a goja.Program is immutable and not tied to a VM).
type Program struct {
	prg  *goja.Program
	size int // bytes of the body, checked against Limits.MaxCodeBytes at run time

	// sync is set when the body cannot await and cannot reach the
	// function it is the body of (see isSyncBody). prg is then a plain
	// function, called through the trampoline (see execution.call): that
	// spares the run the promise machinery an async function builds on
	// every call, which is most of the cost of a small run.
	sync bool
}

// isSyncBody reports whether body, as the body of an async function, can
// be run as the body of a plain function with the same outcome: it holds
// no await (so it runs to its end in one go, as an async function does up
// to its first await), nor anything that could observe which kind of
// function it runs in (arguments.callee, also through eval). An escape
// sequence could spell any of those, so any backslash-u disqualifies it.
// The test is on the text, so a word in a comment or a string also makes
// the body async, which is always correct.
func isSyncBody(body string) bool {
	for _, word := range []string{"await", "arguments", "eval", `\u`} {
		if strings.Contains(body, word) {
			return false
		}
	}
	return true
}

// Compile compiles body as the body of `async function (input, ctx)`.
// A body that does not parse, or that tries to close the wrapper function
// early, is a *Error of KindSyntax whose message gives the line and column in
// body.
func Compile(body string) (*Program, error) {
	return compile(wrapHeader, body)
}

// CompileCode compiles body as the body of `async function ()`, with no
// parameters: for code that gets no input (monday executions), which must
// stay free to declare its own `input` or `ctx` (a parameter of that name
// would make `const input = …` a SyntaxError). Run and Start still accept
// input and ctxObj; the function ignores them.
func CompileCode(body string) (*Program, error) {
	return compile(wrapCodeHeader, body)
}

func compile(header, body string) (*Program, error) {
	src := header + body + wrapFooter
	file, err := parser.ParseFile(nil, codeFile, src, 0, parserOptions...)
	lines := strings.Count(body, "\n") + 1
	if err != nil {
		return nil, syntaxError(err, lines)
	}
	fn := wrappedFunction(file)
	if fn == nil {
		// Something like `}); evil(); (async function () {` balanced the
		// braces differently: refuse it rather than run code outside the
		// function we hand input to.
		return nil, &Error{Kind: KindSyntax, Class: "SyntaxError", Message: "SyntaxError: unbalanced braces: the code closes the function it runs in"}
	}
	sync := isSyncBody(body)
	if sync {
		// Parsed as an async function (which decides what is valid code),
		// compiled as a plain one: without await the body is the same.
		fn.Async = false
	}
	prg, err := goja.CompileAST(file, false)
	if err != nil {
		return nil, syntaxError(err, lines)
	}
	return &Program{prg: prg, size: len(body), sync: sync}, nil
}

// CheckSyntax reports whether body compiles, with the error Compile gives.
// Admin writes call it so that a broken js tool is refused when it is saved,
// not when it is first called.
func CheckSyntax(body string) error {
	_, err := Compile(body)
	return err
}

// wrappedFunction returns the wrapper's function literal if the parsed
// wrapper is exactly one expression statement holding one async function
// literal, i.e. the body did not escape the function; else nil.
func wrappedFunction(p *ast.Program) *ast.FunctionLiteral {
	if len(p.Body) != 1 {
		return nil
	}
	st, ok := p.Body[0].(*ast.ExpressionStatement)
	if !ok {
		return nil
	}
	fn, ok := st.Expression.(*ast.FunctionLiteral)
	if !ok || !fn.Async || fn.Generator {
		return nil
	}
	return fn
}

// syntaxError turns a parser or compiler error into a KindSyntax *Error
// whose position refers to the body (of the given number of lines), not the
// wrapper.
func syntaxError(err error, lines int) *Error {
	var list parser.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		e := list[0]
		return &Error{Kind: KindSyntax, Class: "SyntaxError", Message: "SyntaxError: " + e.Message + position(e.Position, lines)}
	}
	var perr *parser.Error
	if errors.As(err, &perr) {
		return &Error{Kind: KindSyntax, Class: "SyntaxError", Message: "SyntaxError: " + perr.Message + position(perr.Position, lines)}
	}
	var cerr *goja.CompilerSyntaxError
	if errors.As(err, &cerr) {
		if cerr.File != nil {
			return &Error{Kind: KindSyntax, Class: "SyntaxError", Message: "SyntaxError: " + cerr.Message + position(cerr.File.Position(cerr.Offset), lines)}
		}
		return &Error{Kind: KindSyntax, Class: "SyntaxError", Message: "SyntaxError: " + cerr.Message}
	}
	var rerr *goja.CompilerReferenceError
	if errors.As(err, &rerr) {
		return &Error{Kind: KindSyntax, Class: "SyntaxError", Message: "SyntaxError: " + rerr.Message}
	}
	// Unknown shapes still must not leak the wrapper's file name.
	return &Error{Kind: KindSyntax, Class: "SyntaxError", Message: "SyntaxError: " + strings.ReplaceAll(err.Error(), codeFile+": ", "")}
}

// position renders a wrapper position as one in the body: the header takes
// line 1, and a position in the footer means the code ended too early.
func position(p file.Position, lines int) string {
	l := p.Line - 1
	switch {
	case l > lines:
		return " (at the end of the code)"
	case l < 1:
		return " (line 1)"
	default:
		return fmt.Sprintf(" (line %d, column %d)", l, p.Column)
	}
}
