package dynamo

import "testing"

func TestCanonicalNumber(t *testing.T) {
	same := [][]string{
		{"1.50", "1.5", "15e-1", "0.15E1", "+1.5"},
		{"100", "1e2", "1E+2", "100.000", "0.1e3"},
		{"0", "-0", "0.000", "0e10", "-0.0"},
		{"-12.5", "-125e-1", "-0012.50"},
		{"10036651427894288408", "10036651427894288408.0", "1.0036651427894288408e19"},
		{"12345678901234567890123456789012345678", "1.2345678901234567890123456789012345678e37"},
	}
	for _, group := range same {
		want := CanonicalNumber(group[0])
		for _, s := range group[1:] {
			if got := CanonicalNumber(s); got != want {
				t.Errorf("CanonicalNumber(%q) = %q, want %q (same as %q)", s, got, want, group[0])
			}
		}
	}
	different := [][2]string{
		{"10036651427894288408", "10036651427894288409"},
		{"1.5", "-1.5"},
		{"1e2", "1e3"},
		{"0.1", "0.01"},
		{"12345678901234567890123456789012345678", "12345678901234567890123456789012345679"},
	}
	for _, d := range different {
		if CanonicalNumber(d[0]) == CanonicalNumber(d[1]) {
			t.Errorf("CanonicalNumber(%q) == CanonicalNumber(%q) = %q; they differ", d[0], d[1], CanonicalNumber(d[0]))
		}
	}
	for _, bad := range []string{"", "abc", "1.2.3", "1e", "--1", "1x"} {
		if got := CanonicalNumber(bad); got != bad {
			t.Errorf("CanonicalNumber(%q) = %q, want it unchanged", bad, got)
		}
	}
}
