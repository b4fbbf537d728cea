package state

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

type doc struct {
	Segment int               `json:"segment"`
	Key     map[string]string `json:"key"`
	Done    bool              `json:"done"`
}

func testStore(t *testing.T, s Store) {
	ctx := context.Background()
	var got doc
	if ok, err := s.Get(ctx, "e1/backfill/segment-0", &got); err != nil || ok {
		t.Fatalf("Get of a missing key = %v, %v; want false, nil", ok, err)
	}
	want := doc{Segment: 0, Key: map[string]string{"pk": "a"}}
	if err := s.Put(ctx, "e1/backfill/segment-0", want); err != nil {
		t.Fatal(err)
	}
	want.Done = true
	if err := s.Put(ctx, "e1/backfill/segment-0", want); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "e1/backfill/segment-1", doc{Segment: 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "e2/stream/shard-1", doc{}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Get(ctx, "e1/backfill/segment-0", &got); err != nil || !ok || !reflect.DeepEqual(got, want) {
		t.Fatalf("Get = %+v, %v, %v; want %+v", got, ok, err, want)
	}
	keys, err := s.List(ctx, "e1/")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(keys, []string{"e1/backfill/segment-0", "e1/backfill/segment-1"}) {
		t.Fatalf("List = %v", keys)
	}
	if err := s.Delete(ctx, "e1/backfill/segment-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "e1/backfill/segment-1"); err != nil {
		t.Fatalf("deleting a missing key: %v", err)
	}
	if keys, _ := s.List(ctx, "e1/"); len(keys) != 1 {
		t.Fatalf("after delete List = %v", keys)
	}
}

func TestFileStore(t *testing.T) {
	dir := t.TempDir()
	s, err := NewFileStore(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	testStore(t, s)
	// No temporary files are left behind.
	err = filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if strings.Contains(filepath.Base(p), ".tmp-") {
			t.Errorf("temporary file left: %s", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"../escape", "a/../../b", "a//b", "/abs", "a/./b"} {
		if err := s.Put(context.Background(), bad, doc{}); err == nil {
			t.Errorf("key %q was accepted", bad)
		}
	}
	// Table names may contain dots, even two in a row.
	if err := s.Put(context.Background(), "a..b-c..d-1234/backfill/meta", doc{}); err != nil {
		t.Errorf("a key with a dotted table name was refused: %v", err)
	}
	// A damaged file is reported, naming the file and what to do.
	p := filepath.Join(dir, "state", "bad.json")
	if err := os.WriteFile(p, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	var d doc
	if _, err := s.Get(context.Background(), "bad", &d); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Errorf("damaged checkpoint error = %v", err)
	}
}

func TestMemoryStore(t *testing.T) { testStore(t, NewMemory()) }

func TestFileStoreCreatesNothingUntilPut(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	s, err := NewFileStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	var d doc
	if ok, err := s.Get(context.Background(), "e/x", &d); ok || err != nil {
		t.Fatalf("Get = %v, %v", ok, err)
	}
	if keys, err := s.List(context.Background(), ""); err != nil || len(keys) != 0 {
		t.Fatalf("List = %v, %v", keys, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("state directory exists before any Put: %v", err)
	}
}
