package stream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// DynamoDB Local (3.x) encodes an empty map attribute in stream records as
// a bare {} instead of {"M":{}}. The SDK's deserializer does not fail on
// it: it silently decodes the attribute as a copy of a neighbouring value
// (an attribute "m":{} following "l":{"L":[{}]} comes out as a list), so
// the damage cannot be repaired after decoding. withEmptyMapFix rewrites
// the GetRecords response body before the SDK decodes it. Real DynamoDB
// always tags its values; for it the rewrite finds nothing to change.
func withEmptyMapFix(o *dynamodbstreams.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		// After the operation deserializer in the deserialize step means
		// "inside" it: the body is fixed before it is decoded.
		return s.Deserialize.Insert(emptyMapFix{}, "OperationDeserializer", middleware.After)
	})
}

type emptyMapFix struct{}

func (emptyMapFix) ID() string { return "ddbsyncEmptyMapFix" }

func (emptyMapFix) HandleDeserialize(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
	out, md, err := next.HandleDeserialize(ctx, in)
	if err != nil {
		return out, md, err
	}
	resp, ok := out.RawResponse.(*smithyhttp.Response)
	if !ok || resp.StatusCode != 200 || resp.Body == nil {
		return out, md, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	if rerr != nil {
		return out, md, rerr
	}
	resp.Body = io.NopCloser(bytes.NewReader(FixEmptyMapsJSON(body)))
	return out, md, nil
}

// FixEmptyMapsJSON rewrites bare {} attribute values in the Keys, NewImage
// and OldImage of a GetRecords response body as {"M":{}}. A body without
// "{}" or one that does not parse is returned unchanged.
func FixEmptyMapsJSON(body []byte) []byte {
	if !hasBareEmptyMap(body) {
		return body
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc map[string]any
	if err := dec.Decode(&doc); err != nil {
		return body
	}
	recs, _ := doc["Records"].([]any)
	changed := false
	for _, r := range recs {
		rec, _ := r.(map[string]any)
		d, _ := rec["dynamodb"].(map[string]any)
		for _, field := range []string{"Keys", "NewImage", "OldImage"} {
			if m, ok := d[field].(map[string]any); ok {
				for k, v := range m {
					m[k] = fixValue(v, &changed)
				}
			}
		}
	}
	if !changed {
		return body
	}
	fixed, err := json.Marshal(doc)
	if err != nil {
		return body
	}
	return fixed
}

// hasBareEmptyMap is a cheap test on the raw body, so that a page from
// DynamoDB itself, whose empty maps are {"M":{}}, is never decoded twice:
// a bare {} stands in a list ([{} or ,{}) or after a name other than "M".
func hasBareEmptyMap(body []byte) bool {
	for i := 0; ; {
		j := bytes.Index(body[i:], []byte("{}"))
		if j < 0 {
			return false
		}
		j += i
		prev := bytes.TrimRight(body[:j], " \t\r\n")
		switch {
		case bytes.HasSuffix(prev, []byte("[")), bytes.HasSuffix(prev, []byte(",")):
			return true
		case bytes.HasSuffix(prev, []byte(":")):
			name := bytes.TrimRight(prev[:len(prev)-1], " \t\r\n")
			if !bytes.HasSuffix(name, []byte(`"M"`)) {
				return true
			}
		}
		i = j + 2
	}
}

func fixValue(v any, changed *bool) any {
	av, ok := v.(map[string]any)
	if !ok {
		return v
	}
	if len(av) == 0 {
		*changed = true
		return map[string]any{"M": map[string]any{}}
	}
	if m, ok := av["M"].(map[string]any); ok {
		for k, x := range m {
			m[k] = fixValue(x, changed)
		}
	}
	if l, ok := av["L"].([]any); ok {
		for i, x := range l {
			l[i] = fixValue(x, changed)
		}
	}
	return v
}
