package transform

import (
	"encoding/json"
	"sort"
)

// Carrier names the output attribute that holds an unchanged copy of the
// input attribute in: in itself when no step touches it, its new name
// when it is renamed, or the target of a set that only selects it
// (set: {id: item.pk}). ok is false when the output item keeps no
// unchanged copy (the attribute is dropped, or renamed away and the new
// name is then set to something else).
//
// diff uses it to find, from a slave item, the master item it was copied
// from: when every input key attribute has a carrier, an output item
// names its input item.
func (p *Program) Carrier(in string) (out string, ok bool) {
	if !p.transform {
		return in, true
	}
	if _, set := p.setByName[in]; !set && !p.dropped(in) {
		if _, renamed := p.rename[in]; !renamed {
			return in, true
		}
	}
	if to, renamed := p.rename[in]; renamed && !p.dropped(in) {
		if _, set := p.setByName[to]; !set {
			return to, true
		}
	}
	for _, e := range p.sets { // sorted by target: a stable answer
		if len(e.copyPath) == 1 && e.copyPath[0] == in {
			return e.attr, true
		}
	}
	return "", false
}

// Fingerprint is a canonical text of the compiled spec: equal for two
// programs that do the same, whatever the order of the keys in the
// file. A resumable run records it, so that a run with another filter or
// transform does not continue from its state.
func (p *Program) Fingerprint() string {
	type canon struct {
		Filter    string            `json:"filter,omitempty"`
		Transform bool              `json:"transform"`
		Set       map[string]string `json:"set,omitempty"`
		Drop      []string          `json:"drop,omitempty"`
		Rename    map[string]string `json:"rename,omitempty"`
	}
	c := canon{Transform: p.transform, Rename: p.rename, Drop: append([]string(nil), p.drop...)}
	if p.filter != nil {
		c.Filter = p.filter.text
	}
	if len(p.sets) > 0 {
		c.Set = map[string]string{}
		for _, e := range p.sets {
			c.Set[e.attr] = e.text
		}
	}
	sort.Strings(c.Drop)
	b, _ := json.Marshal(c) // maps are written with sorted keys
	return string(b)
}
