package diff

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// store holds the scanned records of every table of a merge diff,
// partitioned by a hash of the key: in memory while the records' budget
// allows, then in one spill file per table and partition. A record is
// the item's exact key (dynamo.KeySchema.KeyString) and its digest.
type store struct {
	parts int
	sides []*side
	limit int64 // bytes of records kept in memory before they spill
	used  atomic.Int64
	// pageLimit is the Scan Limit of every page (0: DynamoDB's 1 MB
	// pages), which bounds the memory of the pages in flight (memory.go).
	pageLimit int32

	dir     string // where spill files go; created on the first spill
	mkdir   func() (string, error)
	spillMu sync.Mutex
	spills  atomic.Int64 // spill rounds
	spilled atomic.Int64 // bytes written to spill files
	log     *zap.Logger
}

// side is one table's records. Partition p holds the bytes [0, base[p])
// of its spill file and then buf[p], whose first flushed[p] bytes are
// also in the file (a resumable run writes its records through to the
// files, and keeps them in memory while the limit allows).
type side struct {
	n       int // index in store.sides: 0 is the master
	mu      sync.Mutex
	buf     [][]byte
	base    []int64
	flushed []int
	disk    []int64 // bytes in each spill file
	// Scan positions, updated with the records under mu (resume.go).
	segs  []segPos
	items int64 // items scanned into the side
	// Master items the program failed on, and the filter left out.
	failed, filtered int64
}

// segPos is where a scan segment stands: every item before start (nil:
// from the beginning) is in the store.
type segPos struct {
	start item
	done  bool
}

func newStore(tables, segments, parts int, limit int64, mkdir func() (string, error)) *store {
	st := &store{parts: parts, limit: limit, mkdir: mkdir}
	for i := range tables {
		st.sides = append(st.sides, &side{n: i, buf: make([][]byte, parts), base: make([]int64, parts),
			flushed: make([]int, parts), disk: make([]int64, parts), segs: make([]segPos, segments)})
	}
	return st
}

// partitionOf is stable across runs (resumed runs find their spill files
// partitioned the same way).
func (st *store) partitionOf(key string) int {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum64() % uint64(st.parts))
}

// batch is a page's records, built without a lock.
type batch struct {
	recs  []byte
	parts []int32 // partition of each record
	ends  []int32 // end offset of each record in recs
}

func (b *batch) add(part int, key string, d digest) {
	b.recs = binary.AppendUvarint(b.recs, uint64(len(key)))
	b.recs = append(b.recs, key...)
	b.recs = append(b.recs, d[:]...)
	b.parts = append(b.parts, int32(part))
	b.ends = append(b.ends, int32(len(b.recs)))
}

func (b *batch) reset() {
	b.recs, b.parts, b.ends = b.recs[:0], b.parts[:0], b.ends[:0]
}

// add appends a batch to a side and spills when the memory limit is
// exceeded. after, when set, runs under the side's lock once the records
// are in (a checkpoint of the scan position must match the records).
func (st *store) add(s *side, b *batch, after func()) error {
	s.mu.Lock()
	var grown int64
	start := int32(0)
	for i, p := range b.parts {
		rec := b.recs[start:b.ends[i]]
		before := cap(s.buf[p])
		s.buf[p] = append(s.buf[p], rec...)
		grown += int64(cap(s.buf[p]) - before)
		start = b.ends[i]
	}
	if after != nil {
		after()
	}
	s.mu.Unlock()
	if st.used.Add(grown) > st.limit {
		return st.spill()
	}
	return nil
}

// spill writes every buffered record to the spill files and frees the
// buffers.
func (st *store) spill() error {
	st.spillMu.Lock()
	defer st.spillMu.Unlock()
	if st.used.Load() <= st.limit {
		return nil // another goroutine spilled meanwhile
	}
	if st.dir == "" {
		dir, err := st.mkdir()
		if err != nil {
			return err
		}
		st.dir = dir
	}
	if st.spills.Add(1) == 1 && st.log != nil {
		st.log.Info(fmt.Sprintf("merge: the scanned keys outgrow their share of the memory limit (%d KiB); spilling them to %s", st.limit>>10, st.dir))
	}
	for _, s := range st.sides {
		s.mu.Lock()
		err := st.flush(s, true)
		s.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// flush appends the side's records not yet in the spill files to them
// (s.mu held); free drops the buffers (else they stay in memory).
func (st *store) flush(s *side, free bool) error {
	for p, buf := range s.buf {
		if len(buf) > s.flushed[p] {
			if err := appendFile(st.path(s.n, p), buf[s.flushed[p]:]); err != nil {
				return err
			}
			s.disk[p] += int64(len(buf) - s.flushed[p])
			st.spilled.Add(int64(len(buf) - s.flushed[p]))
			s.flushed[p] = len(buf)
		}
		if free && buf != nil {
			st.used.Add(-int64(cap(buf)))
			s.buf[p], s.flushed[p], s.base[p] = nil, 0, s.disk[p]
		}
	}
	return nil
}

func (st *store) path(side, part int) string {
	return filepath.Join(st.dir, fmt.Sprintf("t%02d-p%04d.spill", side, part))
}

func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("spill file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("spill file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("spill file: %w", err)
	}
	return nil
}

// rec is one record loaded for comparison.
type rec struct {
	key string
	dig digest
}

// load returns the records of one side's partition (spill file, then
// memory), sorted by key; of a key read twice (a page scanned again
// after a resume) the last record counts.
func (st *store) load(s *side, p int) ([]rec, error) {
	var data []byte
	if s.base[p] > 0 {
		f, err := os.ReadFile(st.path(s.n, p))
		if err != nil {
			return nil, fmt.Errorf("spill file: %w", err)
		}
		if int64(len(f)) < s.base[p] {
			return nil, fmt.Errorf("spill file of partition %d is shorter than recorded", p)
		}
		data = f[:s.base[p]]
	}
	var out []rec
	parse := func(b []byte) error {
		for len(b) > 0 {
			n, w := binary.Uvarint(b)
			if w <= 0 || uint64(len(b)-w) < n+digestSize {
				return fmt.Errorf("spill file of partition %d is corrupt", p)
			}
			r := rec{key: string(b[w : w+int(n)])}
			copy(r.dig[:], b[w+int(n):])
			out = append(out, r)
			b = b[w+int(n)+digestSize:]
		}
		return nil
	}
	if err := parse(data); err != nil {
		return nil, err
	}
	if err := parse(s.buf[p]); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].key < out[j].key })
	uniq := out[:0]
	for _, r := range out {
		if len(uniq) > 0 && uniq[len(uniq)-1].key == r.key {
			uniq[len(uniq)-1] = r
			continue
		}
		uniq = append(uniq, r)
	}
	return uniq, nil
}

// release frees a partition's memory once compared.
func (st *store) release(p int) {
	for _, s := range st.sides {
		s.mu.Lock()
		st.used.Add(-int64(cap(s.buf[p])))
		s.buf[p], s.flushed[p], s.base[p] = nil, 0, s.disk[p]
		s.mu.Unlock()
	}
}
