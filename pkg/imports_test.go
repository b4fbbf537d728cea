// Package pkg_test holds checks on the library as a whole: the packages
// under pkg/ are meant to be imported by other Go programs, which cannot
// import anything under internal/.
package pkg_test

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestNoInternalImports fails if a package under pkg/ imports a package
// under internal/ (its tests may: they never reach another program).
func TestNoInternalImports(t *testing.T) {
	const internal = "github.com/ddbsync/ddbsync/internal"
	n := 0
	err := filepath.WalkDir(".", func(dir string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); dir != "." && (name == "testdata" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(dir, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		n++
		for _, imp := range p.Imports {
			if imp == internal || strings.HasPrefix(imp, internal+"/") {
				t.Errorf("pkg/%s imports %s: a package under pkg/ must not import internal/", filepath.ToSlash(dir), imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("found only %d packages under pkg/", n)
	}
}
