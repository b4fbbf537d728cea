// Command gen-docs writes ddbsync's reference documentation from its
// command tree (internal/docgen): `make docs` runs
//
//	go run ./cmd/gen-docs --markdown docs/cli.md --man-dir man
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/ddbsync/ddbsync/internal/docgen"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("gen-docs", flag.ContinueOnError)
	markdown := fs.String("markdown", "", "write the Markdown reference to FILE")
	manDir := fs.String("man-dir", "", "write man pages into DIR")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *markdown == "" && *manDir == "" {
		fmt.Fprintln(os.Stderr, "gen-docs: give --markdown FILE and/or --man-dir DIR")
		return 2
	}
	if *markdown != "" {
		var buf bytes.Buffer
		if err := docgen.Markdown(&buf, docgen.Tree()); err != nil {
			fmt.Fprintln(os.Stderr, "gen-docs:", err)
			return 1
		}
		if err := os.WriteFile(*markdown, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gen-docs:", err)
			return 1
		}
	}
	if *manDir != "" {
		// SOURCE_DATE_EPOCH (reproducible builds) fixes the pages' date.
		date := time.Now()
		if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				date = time.Unix(n, 0).UTC()
			}
		}
		if err := docgen.Man(docgen.Tree(), *manDir, date); err != nil {
			fmt.Fprintln(os.Stderr, "gen-docs:", err)
			return 1
		}
	}
	return 0
}
