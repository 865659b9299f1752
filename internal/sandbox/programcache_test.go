package sandbox

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
)

func TestProgramCache(t *testing.T) {
	compiles := 0
	var mu sync.Mutex
	counting := func(body string) (*Program, error) {
		mu.Lock()
		compiles++
		mu.Unlock()
		return CompileCode(body)
	}
	c := NewProgramCache(counting, 3, 64)

	p1, err := c.Program("return 1")
	if err != nil {
		t.Fatal(err)
	}
	p2, err := c.Program("return 1")
	if err != nil {
		t.Fatal(err)
	}
	if p1 != p2 || compiles != 1 {
		t.Fatalf("the same body compiled %d times (programs %p, %p), want once", compiles, p1, p2)
	}
	// A cached program runs like a fresh one, in any number of VMs.
	for range 2 {
		out, err := p2.Run(context.Background(), nil, nil, Limits{}, Host{})
		if err != nil || string(out) != "1" {
			t.Fatalf("cached program ran to %s, %v", out, err)
		}
	}

	// Compile errors are returned every time and not kept.
	for range 2 {
		var serr *Error
		if _, err := c.Program("return ("); !errors.As(err, &serr) || serr.Kind != KindSyntax {
			t.Fatalf("syntax error: got %v", err)
		}
	}
	if n := c.Len(); n != 1 {
		t.Errorf("%d programs kept after two failed compiles, want 1", n)
	}

	// Past maxEntries the cache starts over.
	for _, b := range []string{"return 2", "return 3", "return 4"} {
		if _, err := c.Program(b); err != nil {
			t.Fatal(err)
		}
	}
	if n := c.Len(); n != 1 {
		t.Errorf("%d programs kept after the fourth distinct body, want 1 (the cache starts over)", n)
	}

	// A body larger than the whole cache is compiled, not kept.
	big := "return 1;" + strings.Repeat(" ", 64)
	before := compiles
	for range 2 {
		if _, err := c.Program(big); err != nil {
			t.Fatal(err)
		}
	}
	if compiles-before != 2 || c.Len() != 1 {
		t.Errorf("a body over maxBytes: %d compiles, %d kept; want 2 and the cache untouched", compiles-before, c.Len())
	}
}

func TestProgramCacheConcurrent(t *testing.T) {
	c := NewProgramCache(CompileCode, 4, 1<<10)
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			for j := range 50 {
				body := "return " + string(rune('0'+(i+j)%8))
				p, err := c.Program(body)
				if err != nil || p == nil {
					t.Errorf("%q: %v", body, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
