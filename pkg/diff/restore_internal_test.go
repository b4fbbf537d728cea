package diff

import (
	"os"
	"strings"
	"testing"
)

// TestRestoreRefusesShortSpillFile: a spill file shorter than the
// checkpoint says (records written but lost when the machine stopped) is
// refused, not padded with zeros that would read back as records.
func TestRestoreRefusesShortSpillFile(t *testing.T) {
	dir := t.TempDir()
	st := newStore(1, 1, 2, 1<<20, func() (string, error) { return dir, nil })
	st.dir = dir
	if err := os.WriteFile(st.path(0, 1), []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Differ{}
	cp := &checkpointFile{Parts: 2, Sides: []sideState{{Segments: []segState{{}}, Files: []int64{0, 40}}}}
	err := d.restore(st, cp)
	if err == nil || !strings.Contains(err.Error(), "holds 10 bytes, the checkpoint says 40") {
		t.Fatalf("restore = %v, want a refusal of the short spill file", err)
	}
	if fi, _ := os.Stat(st.path(0, 1)); fi.Size() != 10 {
		t.Fatalf("the spill file was changed to %d bytes", fi.Size())
	}
	// The length the checkpoint says is kept; what follows is cut.
	cp.Sides[0].Files[1] = 4
	if err := d.restore(st, cp); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(st.path(0, 1)); fi.Size() != 4 {
		t.Fatalf("the spill file has %d bytes, want 4", fi.Size())
	}
}
