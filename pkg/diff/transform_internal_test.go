package diff

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/internal/ddbtest"
	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/transform"
)

// A master record under a key-changing transform carries the output key
// and the input key; it sorts by output key first and both come back.
func TestRecordKeyCarriesTheInputKey(t *testing.T) {
	d := &Differ{keyed: true}
	d.keys = dynamo.KeySchema{Hash: "pk", HashType: "S", Range: "sk", RangeType: "N"}
	d.out = dynamo.KeySchema{Hash: "id", HashType: "B"}
	in := item{"pk": &types.AttributeValueMemberS{Value: "a\x00b"}, "sk": &types.AttributeValueMemberN{Value: "-12.5"}}
	out := item{"id": &types.AttributeValueMemberB{Value: []byte{0, 0xff, 'S'}}}
	rec, outKS := d.recKey(out, in)
	if d.outPart(rec) != outKS || outKS != d.out.KeyString(out) {
		t.Fatalf("output part %q, want %q", d.outPart(rec), outKS)
	}
	for _, ks := range []dynamo.KeySchema{d.out, {Hash: "h", HashType: "S", Range: "r", RangeType: "B"}} {
		d.out = ks
		o := item{"id": &types.AttributeValueMemberB{Value: make([]byte, 300)}, "h": &types.AttributeValueMemberS{Value: string(make([]byte, 200))}, "r": &types.AttributeValueMemberB{Value: []byte{0x80, 0}}}
		r, oks := d.recKey(o, in)
		if d.outPart(r) != oks {
			t.Fatalf("%s: output part %q, want %q", ks, d.outPart(r), oks)
		}
	}
	d.out = dynamo.KeySchema{Hash: "id", HashType: "B"}
	gotOut, gotIn, err := d.decodeRec(rec)
	if err != nil {
		t.Fatal(err)
	}
	if d.out.KeyString(gotOut) != outKS || d.keys.KeyString(gotIn) != d.keys.KeyString(in) {
		t.Fatalf("decoded %s / %s, want %s / %s", FormatKeyJSON(gotOut), FormatKeyJSON(gotIn), FormatKeyJSON(out), FormatKeyJSON(in))
	}
	if _, _, err := d.decodeRec(rec[:len(rec)-1]); err == nil {
		t.Fatal("a truncated record decoded")
	}
	// Sorted by output key whatever the input key.
	out2 := item{"id": &types.AttributeValueMemberB{Value: []byte{0, 0xff, 'S', 0}}}
	in2 := item{"pk": &types.AttributeValueMemberS{Value: ""}, "sk": &types.AttributeValueMemberN{Value: "0"}}
	rec2, _ := d.recKey(out2, in2)
	if !(rec < rec2) || !(d.out.KeyString(out) < d.out.KeyString(out2)) {
		t.Fatalf("records sort differently from their output keys")
	}
}

// A resumed merge continues only with the same filter and transform.
func TestResumeIDNamesTheProgram(t *testing.T) {
	differ := func(prg *transform.Program) *Differ {
		k := dynamo.KeySchema{Hash: "pk", HashType: "S"}
		return &Differ{cfg: Config{Master: Table{Name: "m", Label: "r:m"}, TotalSegments: 4}, keys: k, out: k, prg: prg}
	}
	ids := map[string]string{"none": differ(nil).resumeID()}
	for name, prg := range map[string]*transform.Program{
		"filter a":  ddbtest.Program(t, `item.a == 1`, ""),
		"filter b":  ddbtest.Program(t, `item.a == 2`, ""),
		"transform": ddbtest.Program(t, `item.a == 1`, "drop: [x]"),
	} {
		id := differ(prg).resumeID()
		for other, oid := range ids {
			if oid == id {
				t.Fatalf("%s and %s share the resume id %s", name, other, id)
			}
		}
		ids[name] = id
	}
}
