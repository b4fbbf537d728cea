package diff

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sort"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
)

// digestSize is the length of an item digest: the first 16 bytes of a
// SHA-256, so that two different items share a digest with probability
// 2⁻¹²⁸ per pair. A collision could only hide a difference, never report
// a false one: every difference is confirmed by Compare on consistent
// reads.
const digestSize = 16

type digest [digestSize]byte

// digester computes item digests that are equal exactly when Compare
// finds the items equal: attributes in name order without the ignored
// ones, numbers in canonical form, sets sorted without duplicates, maps by
// sorted key, lists in order. One digester per goroutine (it reuses its
// buffers).
type digester struct {
	ignore *Matcher
	buf    []byte
	names  []string
	strs   []string
}

func (g *digester) sum(it item) digest {
	g.buf = g.buf[:0]
	g.names = g.names[:0]
	for name := range it {
		if !g.ignore.Ignored(name) {
			g.names = append(g.names, name)
		}
	}
	sort.Strings(g.names)
	g.buf = binary.AppendUvarint(g.buf, uint64(len(g.names)))
	for _, name := range g.names {
		g.buf = appendBytes(g.buf, name)
		g.value(it[name])
	}
	full := sha256.Sum256(g.buf)
	var d digest
	copy(d[:], full[:digestSize])
	return d
}

func appendBytes[T string | []byte](b []byte, v T) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func (g *digester) value(v types.AttributeValue) {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		g.buf = append(g.buf, 'S')
		g.buf = appendBytes(g.buf, x.Value)
	case *types.AttributeValueMemberN:
		g.buf = append(g.buf, 'N')
		g.buf = appendBytes(g.buf, dynamo.CanonicalNumber(x.Value))
	case *types.AttributeValueMemberB:
		g.buf = append(g.buf, 'B')
		g.buf = appendBytes(g.buf, x.Value)
	case *types.AttributeValueMemberBOOL:
		g.buf = append(g.buf, 'T', boolByte(x.Value))
	case *types.AttributeValueMemberNULL:
		g.buf = append(g.buf, '0', boolByte(x.Value))
	case *types.AttributeValueMemberSS:
		g.strs = appendCanon(g.strs[:0], x.Value, func(s string) string { return s })
		g.set('s')
	case *types.AttributeValueMemberNS:
		g.strs = appendCanon(g.strs[:0], x.Value, dynamo.CanonicalNumber)
		g.set('n')
	case *types.AttributeValueMemberBS:
		g.strs = appendCanon(g.strs[:0], x.Value, func(b []byte) string { return string(b) })
		g.set('b')
	case *types.AttributeValueMemberL:
		g.buf = append(g.buf, 'L')
		g.buf = binary.AppendUvarint(g.buf, uint64(len(x.Value)))
		for _, e := range x.Value {
			g.value(e)
		}
	case *types.AttributeValueMemberM:
		g.buf = append(g.buf, 'M')
		g.buf = binary.AppendUvarint(g.buf, uint64(len(x.Value)))
		keys := make([]string, 0, len(x.Value))
		for k := range x.Value {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			g.buf = appendBytes(g.buf, k)
			g.value(x.Value[k])
		}
	default:
		// A union member this SDK does not know: Equal calls such values
		// different, so the digest never matches another item's.
		var nonce [16]byte
		_, _ = rand.Read(nonce[:])
		g.buf = append(g.buf, '?')
		g.buf = append(g.buf, nonce[:]...)
	}
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

func appendCanon[T any](dst []string, vs []T, canon func(T) string) []string {
	for _, v := range vs {
		dst = append(dst, canon(v))
	}
	return dst
}

// set appends the canonical set elements in g.strs, sorted, duplicates
// left out, as Equal compares sets.
func (g *digester) set(tag byte) {
	sort.Strings(g.strs)
	uniq := g.strs[:0]
	for _, e := range g.strs {
		if len(uniq) == 0 || e != uniq[len(uniq)-1] {
			uniq = append(uniq, e)
		}
	}
	g.buf = append(g.buf, tag)
	g.buf = binary.AppendUvarint(g.buf, uint64(len(uniq)))
	for _, e := range uniq {
		g.buf = appendBytes(g.buf, e)
	}
}
