package faultproxy

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

// entries decodes RequestItems (or UnprocessedItems) to raw entries per
// table.
func entries(t *testing.T, body []byte, field string) map[string][]string {
	t.Helper()
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	var m map[string][]json.RawMessage
	if err := json.Unmarshal(top[field], &m); err != nil {
		t.Fatalf("%s: %v", top[field], err)
	}
	out := map[string][]string{}
	for k, v := range m {
		for _, e := range v {
			out[k] = append(out[k], string(e))
		}
	}
	return out
}

func TestSplitBatchWriteKeepsEntriesExact(t *testing.T) {
	// Numbers and strings must reach DynamoDB Local exactly as sent.
	body := []byte(`{"RequestItems":{"a":[` +
		`{"PutRequest":{"Item":{"pk":{"S":"1"},"n":{"N":"1.50"}}}},` +
		`{"PutRequest":{"Item":{"pk":{"S":"<&>"},"n":{"N":"-0.0e3"}}}},` +
		`{"DeleteRequest":{"Key":{"pk":{"S":"3"}}}}],` +
		`"b":[{"PutRequest":{"Item":{"pk":{"S":"\u00e9"}}}},{"PutRequest":{"Item":{"pk":{"S":"5"}}}}]},` +
		`"ReturnConsumedCapacity":"TOTAL"}`)
	orig := entries(t, body, "RequestItems")
	for seed := range uint64(50) {
		part, err := splitBatchWrite(body, rand.New(rand.NewPCG(seed, 1)))
		if err != nil || part == nil {
			t.Fatalf("split: %v, %v", part, err)
		}
		if part.held < 1 || part.held > 4 {
			t.Fatalf("held %d of 5", part.held)
		}
		if !strings.Contains(string(part.forward), `"ReturnConsumedCapacity":"TOTAL"`) {
			t.Errorf("other fields lost: %s", part.forward)
		}
		fwd := entries(t, part.forward, "RequestItems")
		resp, err := part.merge([]byte(`{"ConsumedCapacity":[{"TableName":"a","CapacityUnits":2}],"UnprocessedItems":{}}`))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(resp), `"ConsumedCapacity":[{"TableName":"a","CapacityUnits":2}]`) {
			t.Errorf("response fields lost: %s", resp)
		}
		held := entries(t, resp, "UnprocessedItems")
		n := 0
		for table, want := range orig {
			// Forwarded and held back partition the table's entries, in order.
			var got []string
			f, h := fwd[table], held[table]
			n += len(h)
			for _, e := range want {
				switch {
				case len(f) > 0 && f[0] == e:
					f = f[1:]
				case len(h) > 0 && h[0] == e:
					h = h[1:]
				default:
					t.Fatalf("seed %d table %s: entry %s neither forwarded nor held in order (fwd %v held %v)", seed, table, e, fwd[table], held[table])
				}
				got = append(got, e)
			}
			if len(f) != 0 || len(h) != 0 || !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d table %s: extra entries %v %v", seed, table, f, h)
			}
		}
		if n != part.held {
			t.Errorf("held %d, response carries %d", part.held, n)
		}
	}
}

func TestMergeUnprocessedItemsKeepsUpstreamOnes(t *testing.T) {
	resp := []byte(`{"UnprocessedItems":{"a":[{"PutRequest":{"Item":{"pk":{"S":"up"}}}}]}}`)
	held := map[string][]json.RawMessage{
		"a": {json.RawMessage(`{"PutRequest":{"Item":{"pk":{"S":"h1"}}}}`)},
		"b": {json.RawMessage(`{"DeleteRequest":{"Key":{"pk":{"S":"h2"}}}}`)},
	}
	out, err := mergeUnprocessedItems(resp, held)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"a": {`{"PutRequest":{"Item":{"pk":{"S":"up"}}}}`, `{"PutRequest":{"Item":{"pk":{"S":"h1"}}}}`},
		"b": {`{"DeleteRequest":{"Key":{"pk":{"S":"h2"}}}}`},
	}
	if got := entries(t, out, "UnprocessedItems"); !reflect.DeepEqual(got, want) {
		t.Errorf("merged = %v, want %v", got, want)
	}
}

func TestSplitSingleRequestPassesThrough(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	part, err := splitBatchWrite([]byte(`{"RequestItems":{"a":[{"PutRequest":{"Item":{"pk":{"S":"1"}}}}]}}`), rnd)
	if err != nil || part != nil {
		t.Errorf("one write request: %v, %v; want nothing held", part, err)
	}
	part, err = splitBatchGet([]byte(`{"RequestItems":{"a":{"Keys":[{"pk":{"S":"1"}}]}}}`), rnd)
	if err != nil || part != nil {
		t.Errorf("one key: %v, %v; want nothing held", part, err)
	}
	if _, err := splitBatchWrite([]byte(`not json`), rnd); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestSplitBatchGetKeepsSettings(t *testing.T) {
	body := []byte(`{"RequestItems":{` +
		`"a":{"Keys":[{"pk":{"S":"1"}},{"pk":{"S":"2"}},{"pk":{"S":"3"}}],"ProjectionExpression":"#k, v","ExpressionAttributeNames":{"#k":"pk"},"ConsistentRead":true},` +
		`"b":{"Keys":[{"pk":{"N":"1.0"}},{"pk":{"N":"2"}}],"AttributesToGet":["pk"]}},"ReturnConsumedCapacity":"INDEXES"}`)
	for seed := range uint64(30) {
		part, err := splitBatchGet(body, rand.New(rand.NewPCG(seed, 9)))
		if err != nil || part == nil {
			t.Fatalf("split: %v %v", part, err)
		}
		// DynamoDB Local already left one key of "a" unprocessed.
		resp, err := part.merge([]byte(`{"Responses":{},"UnprocessedKeys":{"a":{"Keys":[{"pk":{"S":"x"}}],"ProjectionExpression":"#k, v","ExpressionAttributeNames":{"#k":"pk"},"ConsistentRead":true}}}`))
		if err != nil {
			t.Fatal(err)
		}
		type ka struct {
			Keys                     []json.RawMessage
			ProjectionExpression     string
			ExpressionAttributeNames map[string]string
			ConsistentRead           bool
			AttributesToGet          []string
		}
		var fwd, un struct {
			RequestItems, UnprocessedKeys map[string]ka
			ReturnConsumedCapacity        string
		}
		if err := json.Unmarshal(part.forward, &fwd); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(resp, &un); err != nil {
			t.Fatal(err)
		}
		if fwd.ReturnConsumedCapacity != "INDEXES" {
			t.Errorf("ReturnConsumedCapacity lost: %s", part.forward)
		}
		keys := map[string]int{}
		for name, m := range map[string]map[string]ka{"forwarded": fwd.RequestItems, "unprocessed": un.UnprocessedKeys} {
			for table, v := range m {
				switch table {
				case "a":
					if v.ProjectionExpression != "#k, v" || !v.ConsistentRead || v.ExpressionAttributeNames["#k"] != "pk" {
						t.Errorf("%s %s lost settings: %+v", name, table, v)
					}
				case "b":
					if !reflect.DeepEqual(v.AttributesToGet, []string{"pk"}) {
						t.Errorf("%s %s lost settings: %+v", name, table, v)
					}
				}
				for _, k := range v.Keys {
					keys[table+string(k)]++
				}
			}
		}
		want := map[string]int{
			`a{"pk":{"S":"1"}}`: 1, `a{"pk":{"S":"2"}}`: 1, `a{"pk":{"S":"3"}}`: 1, `a{"pk":{"S":"x"}}`: 1,
			`b{"pk":{"N":"1.0"}}`: 1, `b{"pk":{"N":"2"}}`: 1,
		}
		if !reflect.DeepEqual(keys, want) {
			t.Fatalf("seed %d: keys forwarded+unprocessed = %v, want %v", seed, keys, want)
		}
		if part.held < 1 || part.held > 4 {
			t.Errorf("held %d of 5", part.held)
		}
	}
}
