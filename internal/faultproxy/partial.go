package faultproxy

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sort"
)

// partial is a batch request cut in two: the part forwarded to DynamoDB
// Local and the part held back, to be returned as unprocessed.
//
// Bodies are handled as json.RawMessage so that items, keys and numbers
// reach DynamoDB Local and the client exactly as they were sent.
type partial struct {
	forward []byte // the rewritten request body
	held    int    // number of write requests or keys held back
	merge   func(resp []byte) ([]byte, error)
}

// pick chooses which of n entries to hold back: a random number from 1 to
// n-1 of them, so that at least one goes through (as DynamoDB, which
// throttles the whole request when it can process nothing). It returns
// nil for n < 2.
func pick(n int, rnd *rand.Rand) map[int]bool {
	if n < 2 {
		return nil
	}
	k := 1 + rnd.IntN(n-1)
	held := make(map[int]bool, k)
	for _, i := range rnd.Perm(n)[:k] {
		held[i] = true
	}
	return held
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// splitBatchWrite splits a BatchWriteItem request body. It returns nil
// when the batch has fewer than two requests.
func splitBatchWrite(body []byte, rnd *rand.Rand) (*partial, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	var items map[string][]json.RawMessage
	if err := json.Unmarshal(top["RequestItems"], &items); err != nil {
		return nil, fmt.Errorf("RequestItems: %w", err)
	}
	tables := sortedKeys(items)
	n := 0
	for _, t := range tables {
		n += len(items[t])
	}
	heldIdx := pick(n, rnd)
	if heldIdx == nil {
		return nil, nil
	}
	fwd := map[string][]json.RawMessage{}
	held := map[string][]json.RawMessage{}
	i := 0
	for _, t := range tables {
		for _, req := range items[t] {
			if heldIdx[i] {
				held[t] = append(held[t], req)
			} else {
				fwd[t] = append(fwd[t], req)
			}
			i++
		}
	}
	raw, err := marshal(fwd)
	if err != nil {
		return nil, err
	}
	top["RequestItems"] = raw
	out, err := marshal(top)
	if err != nil {
		return nil, err
	}
	return &partial{forward: out, held: len(heldIdx), merge: func(resp []byte) ([]byte, error) {
		return mergeUnprocessedItems(resp, held)
	}}, nil
}

// mergeUnprocessedItems adds the held-back write requests to the
// UnprocessedItems of a BatchWriteItem response.
func mergeUnprocessedItems(resp []byte, held map[string][]json.RawMessage) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(resp, &top); err != nil {
		return nil, err
	}
	un := map[string][]json.RawMessage{}
	if raw, ok := top["UnprocessedItems"]; ok {
		if err := json.Unmarshal(raw, &un); err != nil {
			return nil, fmt.Errorf("UnprocessedItems: %w", err)
		}
		if un == nil { // "null"
			un = map[string][]json.RawMessage{}
		}
	}
	for _, t := range sortedKeys(held) {
		un[t] = append(un[t], held[t]...)
	}
	raw, err := marshal(un)
	if err != nil {
		return nil, err
	}
	if top == nil {
		top = map[string]json.RawMessage{}
	}
	top["UnprocessedItems"] = raw
	return marshal(top)
}

// splitBatchGet splits a BatchGetItem request body; each table keeps its
// ProjectionExpression, ConsistentRead, ExpressionAttributeNames and
// AttributesToGet in both halves. It returns nil when the batch has fewer
// than two keys.
func splitBatchGet(body []byte, rnd *rand.Rand) (*partial, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		return nil, err
	}
	var items map[string]map[string]json.RawMessage
	if err := json.Unmarshal(top["RequestItems"], &items); err != nil {
		return nil, fmt.Errorf("RequestItems: %w", err)
	}
	tables := sortedKeys(items)
	keys := map[string][]json.RawMessage{}
	n := 0
	for _, t := range tables {
		var ks []json.RawMessage
		if err := json.Unmarshal(items[t]["Keys"], &ks); err != nil {
			return nil, fmt.Errorf("RequestItems.%s.Keys: %w", t, err)
		}
		keys[t] = ks
		n += len(ks)
	}
	heldIdx := pick(n, rnd)
	if heldIdx == nil {
		return nil, nil
	}
	fwd := map[string]map[string]json.RawMessage{}
	held := map[string]map[string]json.RawMessage{}
	i := 0
	for _, t := range tables {
		var kept, back []json.RawMessage
		for _, k := range keys[t] {
			if heldIdx[i] {
				back = append(back, k)
			} else {
				kept = append(kept, k)
			}
			i++
		}
		var err error
		if len(kept) > 0 {
			if fwd[t], err = withKeys(items[t], kept); err != nil {
				return nil, err
			}
		}
		if len(back) > 0 {
			if held[t], err = withKeys(items[t], back); err != nil {
				return nil, err
			}
		}
	}
	raw, err := marshal(fwd)
	if err != nil {
		return nil, err
	}
	top["RequestItems"] = raw
	out, err := marshal(top)
	if err != nil {
		return nil, err
	}
	return &partial{forward: out, held: len(heldIdx), merge: func(resp []byte) ([]byte, error) {
		return mergeUnprocessedKeys(resp, held)
	}}, nil
}

// withKeys copies a KeysAndAttributes object with other Keys.
func withKeys(ka map[string]json.RawMessage, keys []json.RawMessage) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(ka))
	for k, v := range ka {
		out[k] = v
	}
	raw, err := marshal(keys)
	if err != nil {
		return nil, err
	}
	out["Keys"] = raw
	return out, nil
}

// mergeUnprocessedKeys adds the held-back keys to the UnprocessedKeys of a
// BatchGetItem response.
func mergeUnprocessedKeys(resp []byte, held map[string]map[string]json.RawMessage) ([]byte, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(resp, &top); err != nil {
		return nil, err
	}
	un := map[string]map[string]json.RawMessage{}
	if raw, ok := top["UnprocessedKeys"]; ok {
		if err := json.Unmarshal(raw, &un); err != nil {
			return nil, fmt.Errorf("UnprocessedKeys: %w", err)
		}
		if un == nil {
			un = map[string]map[string]json.RawMessage{}
		}
	}
	for _, t := range sortedKeys(held) {
		h := held[t]
		cur, ok := un[t]
		if !ok {
			un[t] = h
			continue
		}
		var a, b []json.RawMessage
		if err := json.Unmarshal(cur["Keys"], &a); err != nil {
			return nil, fmt.Errorf("UnprocessedKeys.%s.Keys: %w", t, err)
		}
		if err := json.Unmarshal(h["Keys"], &b); err != nil {
			return nil, err
		}
		merged, err := withKeys(cur, append(a, b...))
		if err != nil {
			return nil, err
		}
		un[t] = merged
	}
	raw, err := marshal(un)
	if err != nil {
		return nil, err
	}
	if top == nil {
		top = map[string]json.RawMessage{}
	}
	top["UnprocessedKeys"] = raw
	return marshal(top)
}
