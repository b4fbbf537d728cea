package stream_test

import (
	"testing"

	streamcmd "github.com/ddbsync/ddbsync/internal/cmd/stream"
	synccmd "github.com/ddbsync/ddbsync/internal/cmd/sync"
	"github.com/ddbsync/ddbsync/internal/cmdtest"
)

// --until-caught-up with a checkpoint table is a usage error found with
// the flags, so a dry run refuses it as the run does.
func TestUntilCaughtUpWithCheckpointTable(t *testing.T) {
	const args = "--input-table orders --output-table orders2 --checkpoint-table ckpt --until-caught-up"
	const want = "--until-caught-up cannot be combined with --checkpoint-table"
	cmdtest.Expect(t, streamcmd.NewCmdStream, args, want, nil)
	cmdtest.Expect(t, synccmd.NewCmdSync, args, want, nil)
	cmdtest.Expect(t, synccmd.NewCmdSync, args+" --stream=false", "", func(*testing.T, *synccmd.Options) {})
}
