package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ddbsync/ddbsync/internal/benchutil"
)

// The -program example, the shape of a migration: a filter that
// keeps 90 % of the items (n is 7·i: a multiple of 10 for every tenth
// item; != is not passed to Scan, so every item crosses the network as in
// the plain copy) and a transform of three steps: set a computed
// attribute, drop by pattern, rename.
const (
	exampleFilter    = `item.n % 10 != 0`
	exampleTransform = `set:
  id2: '"T#" + item.pk'
drop: ["hist*"]
rename:
  price: unitPrice
`
)

// programArgs returns the ddbsync arguments of the program contender:
// -filter and -transform, or with -program the example for those not
// given (its transform written into dir). nil: no program contender.
func programArgs(dir, filter, transformFile string, program bool) ([]string, error) {
	if program {
		if filter == "" {
			filter = exampleFilter
		}
		if transformFile == "" {
			transformFile = filepath.Join(dir, "program.yml")
			if err := os.WriteFile(transformFile, []byte(exampleTransform), 0o600); err != nil {
				return nil, err
			}
		}
	}
	var args []string
	if filter != "" {
		args = append(args, "--filter", filter)
	}
	if transformFile != "" {
		args = append(args, "--transform", transformFile)
	}
	return args, nil
}

// programResult is what the program contender's --output json says of
// its copy.
type programResult struct {
	ItemsRead, ItemsWritten, ItemsSkipped, ItemsFailed, ItemsFiltered int64
}

// checkProgramCopy reads the result object from stdout and checks that
// every item read was written or left out by the filter, none failed,
// and the output holds exactly the items written.
func checkProgramCopy(stdout []byte, n, got int) (programResult, error) {
	var res struct {
		Entries []struct {
			ItemsRead     int64 `json:"items_read"`
			ItemsWritten  int64 `json:"items_written"`
			ItemsSkipped  int64 `json:"items_skipped"`
			ItemsFailed   int64 `json:"items_failed"`
			ItemsFiltered int64 `json:"items_filtered"`
		} `json:"entries"`
	}
	var line []byte
	sc := bufio.NewScanner(bytes.NewReader(stdout))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), `{"command"`) {
			line = append([]byte(nil), sc.Bytes()...)
		}
	}
	if line == nil {
		return programResult{}, fmt.Errorf("no result object on standard output")
	}
	if err := json.Unmarshal(line, &res); err != nil || len(res.Entries) != 1 {
		return programResult{}, fmt.Errorf("result object %s: %v", line, err)
	}
	e := res.Entries[0]
	r := programResult{e.ItemsRead, e.ItemsWritten, e.ItemsSkipped, e.ItemsFailed, e.ItemsFiltered}
	if r.ItemsRead != int64(n) || r.ItemsFailed != 0 || r.ItemsWritten+r.ItemsFiltered != int64(n) || r.ItemsSkipped != r.ItemsFiltered || int64(got) != r.ItemsWritten {
		return r, fmt.Errorf("program copy: %+v, output holds %d items (read %d)", r, got, n)
	}
	return r, nil
}

// programReport compares the copy with the filter and transform to the
// plain copy: items read per second (both read the whole table) and CPU
// per item read.
func programReport(w io.Writer, n int, results []result) {
	plain, prog := best(results, "ddbsync"), best(results, "ddbsync-program")
	ips := func(m float64) float64 { return float64(n) / m }
	cpu := func(name string) float64 { return bestCPU(results, name).Seconds() * 100000 / float64(n) }
	runs := 0
	for _, r := range results {
		if r.name == "ddbsync" {
			runs++
		}
	}
	rows := [][]string{
		{"ddbsync", f2(plain.Wall.Seconds()), f0(ips(plain.Wall.Seconds())), "1.00", f2(cpu("ddbsync")), "1.00", f1(peakRSS(results, "ddbsync"))},
		{"ddbsync-program", f2(prog.Wall.Seconds()), f0(ips(prog.Wall.Seconds())), f2(plain.Wall.Seconds() / prog.Wall.Seconds()),
			f2(cpu("ddbsync-program")), f2(cpu("ddbsync-program") / cpu("ddbsync")), f1(peakRSS(results, "ddbsync-program"))},
	}
	fmt.Fprintf(w, "\n%d items read by each copy, best of %d runs each (wall: fastest run; CPU: lowest run; RSS: highest run)\n", n, runs)
	benchutil.Table(w, []string{"", "wall s", "items read/s", "vs plain", "CPU s/100k read", "CPU vs plain", "peak RSS MB"}, rows)
	fmt.Fprintln(w, "targets: items read/s of the copy with a filter and transform ≥ 0.90 × the plain copy, CPU per item read ≤ 1.30 ×")
}
