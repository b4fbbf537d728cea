package pkg_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestNoFlagNamesInMessages fails if a string in the library (outside
// tests, and outside pkg/iampolicy, whose subject is the command line's
// flags) names a command-line flag: engines speak of their own options,
// and the command that runs them says which flag that is
// (job.Names, diff.Config.Names). AWS CLI commands in hints are allowed.
func TestNoFlagNamesInMessages(t *testing.T) {
	flag := regexp.MustCompile(`(^|[\s(,'"])--[a-z][a-z-]+`)
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "iampolicy" || d.Name() == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		n++
		ast.Inspect(f, func(node ast.Node) bool {
			lit, ok := node.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil || strings.Contains(s, "aws dynamodb ") {
				return true
			}
			if m := flag.FindString(s); m != "" {
				t.Errorf("%s: a message names the flag %q: %q", fset.Position(lit.Pos()), strings.TrimLeft(m, " (,'\""), s)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 20 {
		t.Fatalf("only %d files checked: the walk is broken", n)
	}
}
