package transform

import "testing"

func TestMatchGlob(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"tmp*", "tmp", true},
		{"tmp*", "tmpFoo", true},
		{"tmp*", "xtmp", false},
		{"aws:rep:*", "aws:rep:updatetime", true},
		{"aws:rep:*", "aws:repx", false},
		{"*", "", true},
		{"*", "a/b.c[0]", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
		{"a?c", "aéc", true}, // one character, not one byte
		{"*x*y", "axbxcy", true},
		{"*x*y", "axbxc", false},
		{`a\*`, "a*", true},
		{`a\*`, "ab", false},
		{`a\?`, "a?", true},
		{"[ab]", "[ab]", true}, // brackets are literal
		{"[ab]", "a", false},
		{"**a", "ba", true},
		{"a", "A", false},
	}
	for _, c := range cases {
		if err := checkGlob(c.pattern); err != nil {
			t.Errorf("checkGlob(%q): %v", c.pattern, err)
		}
		if got := matchGlob(c.pattern, c.name); got != c.want {
			t.Errorf("matchGlob(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
	for _, bad := range []string{"", `a\`} {
		if checkGlob(bad) == nil {
			t.Errorf("checkGlob(%q) accepted", bad)
		}
	}
}
