package transform

import "testing"

func TestCarrier(t *testing.T) {
	cases := []struct {
		yaml, in, want string
		ok             bool
	}{
		{"", "pk", "pk", true},
		{"set: {id2: '\"T#\" + item.pk'}", "pk", "pk", true},
		{"rename: {pk: id}", "pk", "id", true},
		{"rename: {pk: id}\nset: {id: 'item.pk + \"x\"'}", "pk", "", false},
		{"drop: [pk]", "pk", "", false},
		{"drop: [p*]\nset: {id: item.pk}", "pk", "id", true},
		{"set: {pk: 'item.pk + \"x\"'}", "pk", "", false},
		{"set: {pk: 'item.pk + \"x\"', copy: item.pk}", "pk", "copy", true},
		{"rename: {pk: sk, sk: pk}", "sk", "pk", true},
	}
	for _, tc := range cases {
		p := mustCompile(t, "", tc.yaml)
		if tc.yaml == "" {
			p = mustCompile(t, "true", "")
		}
		got, ok := p.Carrier(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%q: Carrier(%s) = %q, %v; want %q, %v", tc.yaml, tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestFingerprint(t *testing.T) {
	a := mustCompile(t, "item.a == 1", "set: {x: item.a, y: '1'}\ndrop: [b, c]\nrename: {d: e}")
	b := mustCompile(t, "item.a == 1", "rename: {d: e}\ndrop: [c, b]\nset: {y: '1', x: item.a}")
	if a.Fingerprint() != b.Fingerprint() {
		t.Fatalf("same spec, different fingerprints:\n%s\n%s", a.Fingerprint(), b.Fingerprint())
	}
	for _, other := range []*Program{
		mustCompile(t, "item.a == 2", "set: {x: item.a, y: '1'}\ndrop: [b, c]\nrename: {d: e}"),
		mustCompile(t, "item.a == 1", "set: {x: item.a, y: '2'}\ndrop: [b, c]\nrename: {d: e}"),
		mustCompile(t, "item.a == 1", "set: {x: item.a, y: '1'}\ndrop: [b]\nrename: {d: e}"),
		mustCompile(t, "item.a == 1", "set: {x: item.a, y: '1'}\ndrop: [b, c]\nrename: {d: f}"),
		mustCompile(t, "item.a == 1", ""),
	} {
		if other.Fingerprint() == a.Fingerprint() {
			t.Errorf("different specs share the fingerprint %s", a.Fingerprint())
		}
	}
}
