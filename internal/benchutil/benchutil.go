// Package benchutil holds what the benchmarks under bench/ share: loading
// many items into a table quickly, running a command as a subprocess while
// measuring its wall time, CPU time and peak memory, and printing a table
// of results.
package benchutil

import (
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// Load writes n items, made by gen(i) for i in [0, n), into table with
// concurrent BatchWriteItem calls (workers at once; 0 means 16). Unprocessed
// items are resubmitted (dynamo.Writer), so every item is written or Load
// fails.
func Load(ctx context.Context, c dynamo.BatchWriteAPI, table string, n, workers int, gen func(i int) map[string]types.AttributeValue) error {
	if workers <= 0 {
		workers = 16
	}
	w := &dynamo.Writer{Client: c, Table: table}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for start := 0; start < n; start += dynamo.MaxBatchWrite {
		end := min(start+dynamo.MaxBatchWrite, n)
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			reqs := make([]types.WriteRequest, 0, end-start)
			for i := start; i < end; i++ {
				reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: gen(i)}})
			}
			written, err := w.Write(gctx, reqs)
			if err != nil {
				return err
			}
			if written != len(reqs) {
				return fmt.Errorf("load %s: %d of %d items written", table, written, len(reqs))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// Measurement is what one subprocess run cost.
type Measurement struct {
	Wall     time.Duration
	User     time.Duration
	Sys      time.Duration
	MaxRSSKB int64 // peak resident set size, in KiB (Linux ru_maxrss)
	ExitCode int
}

// CPU is user + system time.
func (m Measurement) CPU() time.Duration { return m.User + m.Sys }

// MaxRSSMB is the peak RSS in MiB.
func (m Measurement) MaxRSSMB() float64 { return float64(m.MaxRSSKB) / 1024 }

// Measure runs cmd to completion and measures its wall time, CPU time
// (user+sys of the process and the children it waited for) and peak RSS.
// A non-zero exit is returned as an error along with the measurement.
func Measure(cmd *exec.Cmd) (Measurement, error) {
	start := time.Now()
	err := cmd.Run()
	m := Measurement{Wall: time.Since(start)}
	if cmd.ProcessState == nil {
		return m, err
	}
	m.ExitCode = cmd.ProcessState.ExitCode()
	m.User = cmd.ProcessState.UserTime()
	m.Sys = cmd.ProcessState.SystemTime()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.MaxRSSKB = ru.Maxrss
	}
	if err != nil {
		return m, fmt.Errorf("%s: %w", strings.Join(cmd.Args, " "), err)
	}
	return m, nil
}

// Table prints rows under a header, aligned in columns.
func Table(w io.Writer, header []string, rows [][]string) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(header, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
}
