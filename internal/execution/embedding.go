package execution

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
)

// vectorStore is the per-execution store behind atp.embedding: the client
// computes vectors, the server keeps them and does the similarity maths.
// It lives as long as the execution and is touched only by its goroutine.
type vectorStore struct {
	records []embeddingRecord
}

type embeddingRecord struct {
	ID        string                     `json:"id"`
	Text      string                     `json:"text"`
	Embedding []float64                  `json:"embedding"`
	Metadata  map[string]json.RawMessage `json:"metadata,omitempty"`
}

// searchHit is one result of atp.embedding.search.
type searchHit struct {
	ID         string                     `json:"id"`
	Text       string                     `json:"text"`
	Similarity float64                    `json:"similarity"`
	Metadata   map[string]json.RawMessage `json:"metadata,omitempty"`
}

// searchOptions are the options of atp.embedding.search.
type searchOptions struct {
	TopK          *float64                   `json:"topK"`
	MinSimilarity *float64                   `json:"minSimilarity"`
	Filter        map[string]json.RawMessage `json:"filter"`
	Collection    json.RawMessage            `json:"collection"`
}

// maxVectorDims bounds one vector from the client; real models use a few
// thousand dimensions.
const maxVectorDims = 65536

// parseVector reads the vector a client answered with.
func parseVector(v json.RawMessage) ([]float64, error) {
	var vec []float64
	if err := json.Unmarshal(v, &vec); err != nil || len(vec) == 0 {
		return nil, errors.New("the client's embedding is not a non-empty array of numbers")
	}
	if len(vec) > maxVectorDims {
		return nil, fmt.Errorf("the client's embedding has %d dimensions, more than %d", len(vec), maxVectorDims)
	}
	return vec, nil
}

func (s *vectorStore) add(r embeddingRecord) { s.records = append(s.records, r) }

// search ranks the records by cosine similarity to query: records whose
// metadata matches every filter entry (JSON-equal values; a record without
// the key does not match), with a similarity of at least minSimilarity,
// best first, at most topK.
func (s *vectorStore) search(query []float64, o searchOptions) ([]searchHit, error) {
	topK, minSim := 5, 0.0
	if o.TopK != nil {
		topK = int(math.Max(0, math.Min(*o.TopK, float64(len(s.records)))))
	}
	if o.MinSimilarity != nil {
		minSim = *o.MinSimilarity
	}
	filter := o.Filter
	if len(o.Collection) > 0 && string(o.Collection) != "null" {
		filter = make(map[string]json.RawMessage, len(o.Filter)+1)
		for k, v := range o.Filter {
			filter[k] = v
		}
		filter["collection"] = o.Collection
	}
	hits := []searchHit{}
	for _, r := range s.records {
		if !matches(r.Metadata, filter) {
			continue
		}
		sim, err := cosine(query, r.Embedding)
		if err != nil {
			return nil, err
		}
		if sim >= minSim {
			hits = append(hits, searchHit{ID: r.ID, Text: r.Text, Similarity: sim, Metadata: r.Metadata})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Similarity > hits[j].Similarity })
	if len(hits) > topK {
		hits = hits[:topK]
	}
	return hits, nil
}

func matches(meta, filter map[string]json.RawMessage) bool {
	for k, want := range filter {
		got, ok := meta[k]
		if !ok || !jsonEqual(got, want) {
			return false
		}
	}
	return true
}

// jsonEqual compares two JSON values by meaning (key order and spacing do
// not matter).
func jsonEqual(a, b json.RawMessage) bool {
	if bytes.Equal(a, b) {
		return true
	}
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ca, _ := json.Marshal(x)
	cb, _ := json.Marshal(y)
	return bytes.Equal(ca, cb)
}

// cosine is the cosine similarity of two vectors of the same length; 0
// when either is all zeros.
func cosine(a, b []float64) (float64, error) {
	if len(a) != len(b) {
		return 0, fmt.Errorf("vectors must have the same length (%d vs %d)", len(a), len(b))
	}
	var dot, na, nb float64
	for i := range a {
		dot += a[i] * b[i]
		na += a[i] * a[i]
		nb += b[i] * b[i]
	}
	if na == 0 || nb == 0 {
		return 0, nil
	}
	return dot / (math.Sqrt(na) * math.Sqrt(nb)), nil
}
