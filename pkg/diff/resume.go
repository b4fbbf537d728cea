package diff

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// A resumable merge (Config.StateDir set) keeps its state in
// StateDir/diff-<id>, id naming the tables, the segments and the ignored
// attributes (which the digests depend on): the spill files, to which
// every page's records are written through, and checkpoint.json, which
// records after every page each segment's scan position and each spill
// file's length. A run stopped in any way (SIGINT, SIGTERM, SIGKILL)
// leaves the last checkpoint; the next run with the same arguments cuts
// the spill files back to the recorded lengths (records written after the
// checkpoint are dropped: their pages are read again) and scans each
// segment on from its position. The directory is removed once a run
// finishes.

const checkpointVersion = 1

type checkpointFile struct {
	Version int         `json:"version"`
	ID      string      `json:"id"`
	Parts   int         `json:"partitions"`
	Sides   []sideState `json:"tables"`
}

type sideState struct {
	Table    string     `json:"table"`
	Items    int64      `json:"items"`
	Failed   int64      `json:"failed,omitempty"`
	Filtered int64      `json:"filtered_out,omitempty"`
	Segments []segState `json:"segments"`
	Files    []int64    `json:"spill_bytes"`
}

type segState struct {
	Start string `json:"start,omitempty"` // key JSON; empty: from the beginning
	Done  bool   `json:"done,omitempty"`
}

// resumeID names a merge's state: what the scans and digests depend on,
// the filter and transform included (the master's records are of the
// transformed items).
func (d *Differ) resumeID() string {
	ign := append([]string(nil), d.cfg.Ignore...)
	sort.Strings(ign)
	// The key schemas too: a table created again under its name with
	// another key would decode the old records under the new names.
	parts := []any{checkpointVersion, d.cfg.Master.Label, d.cfg.Master.Name, d.cfg.TotalSegments, ign, d.keys.String()}
	if d.prg != nil {
		parts = append(parts, d.prg.Fingerprint(), d.out.String())
	} else if d.out.String() != d.keys.String() {
		parts = append(parts, d.out.String())
	}
	for _, s := range d.slaves {
		parts = append(parts, s.Label, s.Name)
	}
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// checkpointer writes the checkpoint after pages; one at a time, and a
// page that arrives during a write is covered by the next one.
type checkpointer struct {
	st    *store
	path  string
	id    string
	names []string

	mu    sync.Mutex
	dirty bool
	busy  bool
	err   error
}

// openResume prepares the state directory of a resumable merge: a
// checkpoint found there is restored into st (whose partitions must then
// be the checkpoint's, returned); otherwise the directory starts empty.
func (d *Differ) openResume(dir string, names []string) (*checkpointFile, error) {
	data, err := os.ReadFile(filepath.Join(dir, "checkpoint.json"))
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state directory: %w", err)
	}
	var cp checkpointFile
	if err := json.Unmarshal(data, &cp); err != nil || cp.Version != checkpointVersion || cp.ID != d.resumeID() ||
		len(cp.Sides) != len(names) || cp.Parts <= 0 {
		d.log.Warn(fmt.Sprintf("the diff state in %s does not fit this run; starting over", dir))
		if err := os.RemoveAll(dir); err != nil {
			return nil, fmt.Errorf("state directory: %w", err)
		}
		return nil, os.MkdirAll(dir, 0o700)
	}
	return &cp, nil
}

// restore loads a checkpoint into a store with cp.Parts partitions: the
// spill files are cut back to the recorded lengths and the scan
// positions set.
func (d *Differ) restore(st *store, cp *checkpointFile) error {
	for i, s := range st.sides {
		ss := cp.Sides[i]
		if len(ss.Files) != st.parts || len(ss.Segments) != len(s.segs) {
			return fmt.Errorf("the diff checkpoint in %s is inconsistent; remove the directory to start over", st.dir)
		}
		for p, n := range ss.Files {
			path := st.path(i, p)
			if n == 0 {
				if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("spill file: %w", err)
				}
				continue
			}
			// A file shorter than the checkpoint says lost records
			// (written but not on disk when the machine stopped):
			// Truncate would pad it with zeros, read back as records.
			fi, err := os.Stat(path)
			if err != nil {
				return fmt.Errorf("spill file: %w", err)
			}
			if fi.Size() < n {
				return fmt.Errorf("the diff checkpoint in %s is inconsistent (spill file %s holds %d bytes, the checkpoint says %d); remove the directory to start over", st.dir, path, fi.Size(), n)
			}
			if err := os.Truncate(path, n); err != nil {
				return fmt.Errorf("spill file: %w", err)
			}
			s.disk[p], s.base[p] = n, n
		}
		for g, seg := range ss.Segments {
			s.segs[g].done = seg.Done
			if seg.Start != "" {
				k, err := ParseKeyJSON(seg.Start)
				if err != nil {
					return fmt.Errorf("the diff checkpoint in %s: %v", st.dir, err)
				}
				s.segs[g].start = k
			}
		}
		s.items, s.failed, s.filtered = ss.Items, ss.Failed, ss.Filtered
	}
	return nil
}

// page records that a page is in the store and writes a checkpoint, or
// leaves it to the write in progress.
func (c *checkpointer) page() error {
	c.mu.Lock()
	c.dirty = true
	if c.busy {
		err := c.err
		c.mu.Unlock()
		return err
	}
	c.busy = true
	for c.dirty && c.err == nil {
		c.dirty = false
		c.mu.Unlock()
		err := c.write()
		c.mu.Lock()
		c.err = err
	}
	c.busy = false
	err := c.err
	c.mu.Unlock()
	return err
}

// write flushes every side's records to the spill files and records, with
// the same lock held per side, the positions they correspond to.
func (c *checkpointer) write() error {
	cp := checkpointFile{Version: checkpointVersion, ID: c.id, Parts: c.st.parts}
	for i, s := range c.st.sides {
		s.mu.Lock()
		err := c.st.flush(s, false)
		ss := sideState{Table: c.names[i], Items: s.items, Failed: s.failed, Filtered: s.filtered, Files: append([]int64(nil), s.disk...)}
		for _, g := range s.segs {
			st := segState{Done: g.done}
			if g.start != nil {
				st.Start = FormatKeyJSON(g.start)
			}
			ss.Segments = append(ss.Segments, st)
		}
		s.mu.Unlock()
		if err != nil {
			return err
		}
		cp.Sides = append(cp.Sides, ss)
	}
	data, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("diff checkpoint: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("diff checkpoint: %w", err)
	}
	return nil
}
