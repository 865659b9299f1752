package execution

import (
	"encoding/json"
	"strconv"
	"sync"
)

// Journal is the ordered record of everything an execution received from
// outside its code: the seed of its randomness, every clock reading, every
// server tool result, every timer firing, every cache answer and every
// client answer, in the order the code saw them. Replaying the code against
// its journal reproduces the execution exactly, which is how a later
// version restores an execution on another instance.
//
// The engine appends from the execution's goroutine while the code runs
// and from the resuming goroutine while it is paused, never both at once.
// Appends sit on the code's hot path (every Date.now()), so an
// implementation must not block on I/O there: a persistent one buffers and
// writes at pauses.
type Journal interface {
	Append(Entry)
	// Entries returns the entries appended so far, in order.
	Entries() []Entry
}

// EntryKind says what an Entry records.
type EntryKind string

// Entry kinds.
const (
	// EntrySeed: Value is the hex seed of Math.random and of embedding ids
	// (a ChaCha8 stream); drawn once, first.
	EntrySeed EntryKind = "seed"
	// EntryTime: a clock reading (Date.now(), new Date()); Value is the
	// time in ms since the epoch, Count how many consecutive readings
	// returned it.
	EntryTime EntryKind = "time"
	// EntryTool: a server tool call settled; Ref is the number of the host
	// call (in call order), Name the tool (group.tool), Value the result or
	// Error the message thrown in the code.
	EntryTool EntryKind = "tool"
	// EntryTimer: a timer fired; Ref is its id.
	EntryTimer EntryKind = "timer"
	// EntryCache: an atp.cache call returned; Name is the operation, Ref
	// the key, Value the answer (get, has) or Error.
	EntryCache EntryKind = "cache"
	// EntryAnswer: the client answered a callback; Ref is the callback id,
	// Value the answer as sent.
	EntryAnswer EntryKind = "answer"
)

// Entry is one record of a Journal.
type Entry struct {
	Seq   int64           `json:"seq"` // 1, 2, … in order
	Kind  EntryKind       `json:"kind"`
	Ref   string          `json:"ref,omitempty"`
	Name  string          `json:"name,omitempty"`
	Value json.RawMessage `json:"value,omitempty"`
	Error string          `json:"error,omitempty"`
	Count int             `json:"count,omitempty"`
}

// MemoryJournal is a Journal in memory, safe for concurrent use.
type MemoryJournal struct {
	mu      sync.Mutex
	entries []Entry
}

// NewMemoryJournal returns an empty MemoryJournal; its signature fits
// Config.NewJournal.
func NewMemoryJournal(string) Journal { return &MemoryJournal{} }

// Append adds e.
func (j *MemoryJournal) Append(e Entry) {
	j.mu.Lock()
	j.entries = append(j.entries, e)
	j.mu.Unlock()
}

// Entries returns a copy of the entries.
func (j *MemoryJournal) Entries() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Entry(nil), j.entries...)
}

// recorder numbers entries and folds runs of equal clock readings into
// one entry, so a loop around Date.now() costs the journal one entry per
// millisecond rather than one per call.
type recorder struct {
	mu      sync.Mutex
	j       Journal
	seq     int64
	time    Entry // a pending EntryTime, Count > 0 when set
	timeVal int64
}

func (r *recorder) append(e Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
	r.seq++
	e.Seq = r.seq
	r.j.Append(e)
}

// clock records one clock reading of ms.
func (r *recorder) clock(ms int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.time.Count > 0 && r.timeVal == ms {
		r.time.Count++
		return
	}
	r.flushLocked()
	r.seq++
	r.time = Entry{Seq: r.seq, Kind: EntryTime, Value: json.RawMessage(strconv.FormatInt(ms, 10)), Count: 1}
	r.timeVal = ms
}

// flush writes a pending clock entry; the engine calls it at each pause and
// at the end, so the journal is complete whenever the code is not running.
func (r *recorder) flush() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushLocked()
}

func (r *recorder) flushLocked() {
	if r.time.Count > 0 {
		r.j.Append(r.time)
		r.time = Entry{}
	}
}
