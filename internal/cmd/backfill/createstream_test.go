package backfill_test

import (
	"testing"

	backfillcmd "github.com/ddbsync/ddbsync/internal/cmd/backfill"
	"github.com/ddbsync/ddbsync/internal/cmdtest"
)

func TestCreateOutputStreamFlag(t *testing.T) {
	cmdtest.Expect(t, backfillcmd.NewCmdBackfill, "--input-table orders --output-table orders2 --create-output-stream", "add --create-output-table", nil)
	cmdtest.Expect(t, backfillcmd.NewCmdBackfill, "--input-table orders --output-table orders2 --create-output-table --create-output-stream", "", func(t *testing.T, o *backfillcmd.Options) {
		if !o.CreateOutputTable || !o.CreateOutputStream {
			t.Errorf("options %+v", o)
		}
	})
}
