// Package state keeps checkpoints: backfill progress per scan segment,
// stream progress per shard, and the sync handover record. A Store is a
// small key/value store of JSON documents; the default FileStore keeps one
// file per key under a state directory, written atomically.
package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Store keeps JSON documents by key. Keys are slash-separated paths such
// as "ENTRY-ID/backfill/segment-3". Implementations are safe for
// concurrent use.
type Store interface {
	// Get decodes the document at key into v and reports whether it existed.
	Get(ctx context.Context, key string, v any) (bool, error)
	// Put stores v at key, replacing what was there, atomically: a crash
	// leaves either the old or the new document, never a torn one.
	Put(ctx context.Context, key string, v any) error
	// Delete removes the document at key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the keys that start with prefix, sorted.
	List(ctx context.Context, prefix string) ([]string, error)
}

// Where names the place a store keeps its documents, for messages that
// tell the user what to look at or remove: "state directory DIR",
// "checkpoint table TABLE". A store (or a wrapper) says it with a
// Where() string method; any other store is "checkpoint store".
func Where(s Store) string {
	if w, ok := s.(interface{ Where() string }); ok {
		return w.Where()
	}
	return "checkpoint store"
}

// FileStore is a Store in a local directory.
type FileStore struct {
	dir string
	mu  sync.Mutex // serialises writes of one key against each other
}

// NewFileStore returns a store rooted at dir. The directory is created
// by the first Put, so a run that stops before writing anything (bad
// input, say) leaves nothing behind.
func NewFileStore(dir string) (*FileStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("the state directory must not be empty")
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, fmt.Errorf("state directory %s is a file, not a directory", dir)
	}
	return &FileStore{dir: dir}, nil
}

// Dir is the directory of the store.
func (s *FileStore) Dir() string { return s.dir }

// Where is "state directory DIR" (see the package's Where).
func (s *FileStore) Where() string { return "state directory " + s.dir }

func (s *FileStore) path(key string) (string, error) {
	for _, part := range strings.Split(key, "/") {
		if part == "" || part == "." || part == ".." {
			return "", fmt.Errorf("invalid state key %q", key)
		}
	}
	clean := filepath.Clean("/" + key)
	return filepath.Join(s.dir, filepath.FromSlash(clean)) + ".json", nil
}

// Get implements Store.
func (s *FileStore) Get(_ context.Context, key string, v any) (bool, error) {
	p, err := s.path(key)
	if err != nil {
		return false, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read checkpoint %s: %w", p, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return false, fmt.Errorf("checkpoint %s is damaged (%v); remove it to start that part over", p, err)
	}
	return true, nil
}

// Put implements Store: write a temporary file, fsync, rename.
func (s *FileStore) Put(_ context.Context, key string, v any) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode checkpoint %s: %w", key, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint %s: %w", p, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write checkpoint %s: %w", p, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", p, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("write checkpoint %s: %w", p, err)
	}
	// Make the rename itself durable.
	if d, err := os.Open(filepath.Dir(p)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Delete implements Store.
func (s *FileStore) Delete(_ context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete checkpoint %s: %w", p, err)
	}
	return nil
}

// List implements Store.
func (s *FileStore) List(_ context.Context, prefix string) ([]string, error) {
	var keys []string
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(p, ".json") || strings.HasPrefix(d.Name(), ".tmp-") {
			return nil
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		key := strings.TrimSuffix(filepath.ToSlash(rel), ".json")
		if strings.HasPrefix(key, prefix) {
			keys = append(keys, key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list checkpoints in %s: %w", s.dir, err)
	}
	sort.Strings(keys)
	return keys, nil
}

// Memory is an in-memory Store for tests.
type Memory struct {
	mu   sync.Mutex
	docs map[string][]byte
}

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory { return &Memory{docs: map[string][]byte{}} }

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string, v any) (bool, error) {
	m.mu.Lock()
	data, ok := m.docs[key]
	m.mu.Unlock()
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(data, v)
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.docs[key] = data
	m.mu.Unlock()
	return nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	delete(m.docs, key)
	m.mu.Unlock()
	return nil
}

// List implements Store.
func (m *Memory) List(_ context.Context, prefix string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var keys []string
	for k := range m.docs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}
