package archtest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// listedPackage is the part of `go list -json` output these tests read.
type listedPackage struct {
	ImportPath string
	Standard   bool
	DepOnly    bool // a dependency, not matched by ./...
	Imports    []string
	Deps       []string
	Module     *struct{ Path string }
}

// graph is the import graph of the module's packages and all their
// dependencies, without tests.
type graph struct {
	module string
	pkgs   map[string]*listedPackage
	own    []*listedPackage // the module's packages, in go list order
}

func loadGraph(tb testing.TB) *graph {
	tb.Helper()
	root := moduleRoot(tb)
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Standard,DepOnly,Imports,Deps,Module", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("go list -deps ./...: %v\n%s", err, stderr.String())
	}
	g := &graph{pkgs: map[string]*listedPackage{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p listedPackage
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			tb.Fatalf("decoding go list output: %v", err)
		}
		g.pkgs[p.ImportPath] = &p
		if !p.DepOnly {
			g.own = append(g.own, &p)
		}
	}
	g.module = modulePath(tb, root)
	if len(g.own) == 0 {
		tb.Fatal("go list ./... found no packages")
	}
	return g
}

func moduleRoot(tb testing.TB) string {
	tb.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		tb.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == "/dev/null" {
		tb.Fatal("not inside the module")
	}
	return strings.TrimSuffix(gomod, "/go.mod")
}

func modulePath(tb testing.TB, root string) string {
	tb.Helper()
	cmd := exec.Command("go", "list", "-m")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		tb.Fatalf("go list -m: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// within reports whether pkg is dir or below it (dir is module-relative,
// e.g. "internal/store").
func (g *graph) within(pkg, dir string) bool {
	p := g.module + "/" + dir
	return pkg == p || strings.HasPrefix(pkg, p+"/")
}

// path returns an import chain from -> … -> to, following Imports.
func (g *graph) path(from, to string) []string {
	prev := map[string]string{from: ""}
	queue := []string{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			var chain []string
			for p := cur; p != ""; p = prev[p] {
				chain = append([]string{p}, chain...)
			}
			return chain
		}
		if p := g.pkgs[cur]; p != nil {
			for _, imp := range p.Imports {
				if _, seen := prev[imp]; !seen {
					prev[imp] = cur
					queue = append(queue, imp)
				}
			}
		}
	}
	return []string{from, "…", to}
}

func (g *graph) short(pkg string) string {
	return strings.TrimPrefix(pkg, g.module+"/")
}

func (g *graph) chain(from, to string) string {
	c := g.path(from, to)
	for i := range c {
		c[i] = g.short(c[i])
	}
	return strings.Join(c, " → ")
}

// TestDependencyDirection enforces style.md: cmd → api → toolkit →
// {sandbox, oauth}, store → toolkit, and cmd wires everything.
func TestDependencyDirection(t *testing.T) {
	t.Parallel()
	for _, v := range violations(loadGraph(t)) {
		t.Error(v)
	}
}

// violations lists every forbidden import of g, each naming the edge and
// the chain of imports that makes it.
func violations(g *graph) []string {
	var out []string

	// noDeps: packages in dir must not depend on packages in any of the
	// forbidden dirs, directly or through others.
	noDeps := []struct {
		dir, why  string
		forbidden []string
	}{
		{"internal/toolkit", "the domain depends on no transport and no persistence; they depend on it", []string{"internal/api", "internal/protocol", "internal/execution", "internal/remote", "internal/store", "cmd"}},
		{"internal/store", "persistence returns domain types; it knows no transport", []string{"internal/api", "internal/protocol", "internal/execution", "internal/remote", "cmd"}},
		{"internal/oauth", "OAuth is used by the domain and the transports, and uses neither persistence nor transport", []string{"internal/api", "internal/protocol", "internal/store", "cmd"}},
		{"internal/sandbox", "the sandbox runs JS and knows no HTTP, SQL or OAuth", []string{"internal/api", "internal/protocol", "internal/execution", "internal/store", "internal/toolkit", "internal/oauth", "cmd"}},
		{"internal/api", "transports reach persistence only through the domain's Store interface", []string{"internal/store", "cmd"}},
		{"internal/protocol", "protocol surfaces reach persistence only through the domain; the admin surface does not depend on them, nor they on it", []string{"internal/api", "internal/store", "cmd"}},
		{"internal/execution", "the execution engine runs code for a surface; it knows no transport and no persistence", []string{"internal/api", "internal/protocol", "internal/store", "cmd"}},
		{"internal/remote", "the hub of toolkit processes is an executor of the domain; transports feed it", []string{"internal/api", "internal/protocol", "internal/store", "cmd"}},
		{"internal/httpstatus", "the status table serves every surface and depends on none", []string{"internal/api", "internal/protocol", "internal/store", "cmd"}},
		{"internal/httptool", "an executor of the domain; it knows no transport surface and no persistence", []string{"internal/api", "internal/protocol", "internal/store", "cmd"}},
		{"internal/webhook", "webhook delivery serves the domain's events; it knows no transport surface and no persistence", []string{"internal/api", "internal/protocol", "internal/store", "internal/oauth", "cmd"}},
		{"migrations", "the schema is data only", []string{"internal", "cmd"}},
	}
	for _, rule := range noDeps {
		for _, p := range g.own {
			if !g.within(p.ImportPath, rule.dir) {
				continue
			}
			for _, dep := range p.Deps {
				for _, f := range rule.forbidden {
					if g.within(dep, f) && !g.within(dep, rule.dir) {
						out = append(out, fmt.Sprintf("forbidden import: %s depends on %s (%s): %s",
							g.short(p.ImportPath), g.short(dep), rule.why, g.chain(p.ImportPath, dep)))
					}
				}
			}
		}
	}

	for _, p := range g.own {
		// The domain and the execution engine speak no HTTP (an http tool
		// runner or a protocol surface lives in a package of its own).
		for _, noHTTP := range []string{"internal/toolkit", "internal/execution"} {
			if p.ImportPath != g.module+"/"+noHTTP {
				continue
			}
			for _, imp := range p.Imports {
				if imp == "net/http" || strings.HasPrefix(imp, "net/http/") {
					out = append(out, fmt.Sprintf("forbidden import: %s imports %s (it knows no transport; put HTTP code in a package of its own)", noHTTP, imp))
				}
			}
		}
		// The sandbox uses only goja and the standard library.
		if g.within(p.ImportPath, "internal/sandbox") {
			for _, imp := range p.Imports {
				dep := g.pkgs[imp]
				switch {
				case dep != nil && dep.Standard:
				case imp == "github.com/dop251/goja" || strings.HasPrefix(imp, "github.com/dop251/goja/") || strings.HasPrefix(imp, "github.com/dop251/goja_nodejs"):
				case g.within(imp, "internal/sandbox"):
				default:
					out = append(out, fmt.Sprintf("forbidden import: %s imports %s (the sandbox imports only goja and the standard library)", g.short(p.ImportPath), g.short(imp)))
				}
			}
		}
		// Nothing imports a command.
		if !g.within(p.ImportPath, "cmd") {
			for _, dep := range p.Deps {
				if g.within(dep, "cmd") {
					out = append(out, fmt.Sprintf("forbidden import: %s depends on %s (commands wire packages; nothing imports them): %s",
						g.short(p.ImportPath), g.short(dep), g.chain(p.ImportPath, dep)))
				}
			}
		}
	}
	return out
}

// TestViolationsNameTheEdge feeds the checker a made-up graph with every
// kind of forbidden edge, so that a checker that silently passes
// everything cannot go unnoticed.
func TestViolationsNameTheEdge(t *testing.T) {
	t.Parallel()
	const m = "example.com/atp"
	g := &graph{module: m, pkgs: map[string]*listedPackage{}}
	add := func(path string, std bool, imports ...string) {
		p := &listedPackage{ImportPath: path, Standard: std, Imports: imports}
		g.pkgs[path] = p
		if strings.HasPrefix(path, m) {
			g.own = append(g.own, p)
		}
	}
	add("net/http", true)
	add("strings", true)
	add("github.com/dop251/goja", false)
	add("github.com/evil/lib", false)
	add(m+"/internal/store", false)
	add(m+"/internal/helper", false, m+"/internal/store")
	add(m+"/internal/toolkit", false, "net/http", m+"/internal/helper")
	add(m+"/internal/sandbox", false, "strings", "github.com/dop251/goja", "github.com/evil/lib")
	add(m+"/internal/oauth", false, "strings")
	add(m+"/cmd/tool", false)
	add(m+"/internal/api", false, m+"/cmd/tool")
	// Deps is the transitive closure go list computes; build it here.
	for _, p := range g.pkgs {
		seen := map[string]bool{}
		var walk func(string)
		walk = func(path string) {
			for _, imp := range g.pkgs[path].Imports {
				if !seen[imp] {
					seen[imp] = true
					walk(imp)
				}
			}
		}
		walk(p.ImportPath)
		for d := range seen {
			p.Deps = append(p.Deps, d)
		}
	}

	got := strings.Join(violations(g), "\n")
	for _, want := range []string{
		"forbidden import: internal/toolkit depends on internal/store (the domain depends on no transport and no persistence; they depend on it): internal/toolkit → internal/helper → internal/store",
		"forbidden import: internal/toolkit imports net/http",
		"forbidden import: internal/sandbox imports github.com/evil/lib",
		"forbidden import: internal/api depends on cmd/tool",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("violations lack %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "internal/oauth") || strings.Contains(got, "dop251/goja ") {
		t.Errorf("violations report an allowed import:\n%s", got)
	}
}

// TestEveryPackageHasDoc checks that each package of the module has a
// doc.go (style.md: it says what the package is for and what it must not
// import).
func TestEveryPackageHasDoc(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	cmd := exec.Command("go", "list", "-f", "{{.ImportPath}} {{.Dir}}", "./...")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list ./...: %v", err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, dir, _ := strings.Cut(line, " ")
		if strings.Contains(pkg, "/cmd/") {
			continue // a command documents itself in its main.go
		}
		if !fileExists(dir + "/doc.go") {
			t.Errorf("%s has no doc.go saying what it is for and what it must not import", pkg)
		}
	}
}
