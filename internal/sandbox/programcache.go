package sandbox

import "sync"

// ProgramCache keeps compiled programs by their source, so that code that
// runs again (a tool called often, a script an agent sends again) is not
// parsed and compiled again: for a small run, compiling costs as much as
// the run. A Program is immutable and may run in many VMs at once. The
// cache is bounded by entries and by source bytes; past either it starts
// over, so a miss costs one compile. Compile errors are not kept. Safe for
// concurrent use.
type ProgramCache struct {
	compile    func(string) (*Program, error)
	maxEntries int
	maxBytes   int

	mu       sync.Mutex
	programs map[string]*Program
	bytes    int
}

// NewProgramCache returns a cache of what compile (Compile or CompileCode)
// makes of a source, holding at most maxEntries programs of maxBytes of
// source in all.
func NewProgramCache(compile func(string) (*Program, error), maxEntries, maxBytes int) *ProgramCache {
	return &ProgramCache{compile: compile, maxEntries: maxEntries, maxBytes: maxBytes, programs: make(map[string]*Program)}
}

// Program returns the compiled program of body, compiling it on a miss.
// A body larger than the whole cache is compiled and not kept.
func (c *ProgramCache) Program(body string) (*Program, error) {
	c.mu.Lock()
	p, ok := c.programs[body]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := c.compile(body)
	if err != nil || len(body) > c.maxBytes {
		return p, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.programs[body]; !ok {
		if len(c.programs) >= c.maxEntries || c.bytes+len(body) > c.maxBytes {
			clear(c.programs)
			c.bytes = 0
		}
		c.programs[body] = p
		c.bytes += len(body)
	}
	return p, nil
}

// Len is the number of programs kept.
func (c *ProgramCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.programs)
}
