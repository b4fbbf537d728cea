package stream_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

func TestTransformedStream(t *testing.T) {
	c, _ := ddbtest.Clients(t)
	tr := filepath.Join(t.TempDir(), "t.yml")
	// The output is keyed by v, an attribute other than the input key.
	if err := os.WriteFile(tr, []byte("set:\n  vk: 'string(item.v)'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	outKey := ddbtest.KeySpec{Hash: "vk", HashType: types.ScalarAttributeTypeS}

	t.Run("a computed key without old images exits 2, nothing written", func(t *testing.T) {
		src, dst := ddbtest.Name(t, "src"), ddbtest.Name(t, "dst")
		k := ddbtest.StringKey
		k.Stream = types.StreamViewTypeNewImage
		ddbtest.CreateTable(t, c, src, k)
		ddbtest.CreateTable(t, c, dst, outKey)
		ddbtest.PutItems(t, c, src, []map[string]types.AttributeValue{item("a", 1)})
		code, out, errOut := run(t, context.Background(), t.TempDir(), "--input-table", src, "--output-table", dst, "--transform", tr, "--until-caught-up")
		if code != 2 || !strings.Contains(errOut, "NEW_AND_OLD_IMAGES") || !strings.Contains(errOut, "old image") {
			t.Fatalf("exit %d, want 2 asking for old images\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if n := len(ddbtest.ScanAll(t, c, dst)); n != 0 {
			t.Fatalf("%d items written", n)
		}
	})

	t.Run("filtered and transformed with old images", func(t *testing.T) {
		src, dst := ddbtest.Name(t, "src"), ddbtest.Name(t, "dst")
		k := ddbtest.StringKey
		k.Stream = types.StreamViewTypeNewAndOldImages
		ddbtest.CreateTable(t, c, src, k)
		ddbtest.CreateTable(t, c, dst, outKey)
		var items []map[string]types.AttributeValue
		for i := range 60 {
			items = append(items, item(fmt.Sprintf("k%03d", i), i))
		}
		ddbtest.PutItems(t, c, src, items)
		// Moves (v changes), items leaving the filter, and deletes.
		var moved []map[string]types.AttributeValue
		for i := range 20 {
			moved = append(moved, item(fmt.Sprintf("k%03d", i), 1000+i))
		}
		ddbtest.PutItems(t, c, src, moved)
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		filter := "item.v % 5 != 0"
		code, out, errOut := run(t, ctx, t.TempDir(), "--input-table", src, "--output-table", dst, "--transform", tr, "--filter", filter, "--until-caught-up")
		if code != 0 {
			t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		data, _ := os.ReadFile(tr)
		spec, _ := transform.ParseTransform(data)
		prog, err := transform.Compile(transform.Spec{Filter: filter, Transform: spec})
		if err != nil {
			t.Fatal(err)
		}
		if n := ddbtest.AssertTransformed(t, c, prog, src, dst, "vk", ""); n != 48 {
			t.Fatalf("output holds %d items, want 48", n)
		}
	})
}
