package mparticle

import "github.com/currents-mparticle/currents-mparticle/plugins/currents"

// attrSink collects one event's custom attributes under mParticle's limits
// and the attribute options.
type attrSink struct {
	s     *settings
	attrs []Attribute
	c     *Counters
}

// addValue adds a Currents value: scalars as they are, maps and records
// flattened with dotted names, arrays left out (the opening paragraph of docs/mapping.md).
func (k *attrSink) addValue(name, source string, v currents.Value, dedup bool, depth int) {
	switch v.Kind() {
	case currents.KindString, currents.KindBytes:
		k.add(name, source, StringValue(v.Str()), dedup)
	case currents.KindInt:
		k.add(name, source, IntValue(v.Int()), dedup)
	case currents.KindFloat:
		if f := v.Float(); finite(f) {
			k.add(name, source, FloatValue(f), dedup)
		}
	case currents.KindBool:
		k.add(name, source, BoolValue(v.Bool()), dedup)
	case currents.KindMap, currents.KindRecord:
		if depth >= maxPropertyDepth {
			return
		}
		for _, e := range v.Entries() {
			if !e.Value.IsNull() {
				n := name + "." + e.Name
				k.addValue(n, n, e.Value, true, depth+1)
			}
		}
	}
}

// add adds one attribute: the remove and hash options first (by attribute
// name, then by source field name), then mParticle's limits (name length,
// count, value length), each change counted. dedup asks to skip a name that
// is already there (names that do not come straight from the writer schema,
// whose field names are unique). An empty name (a property "" or a
// structured message key "") cannot be sent and is left out.
func (k *attrSink) add(name, source string, v Value, dedup bool) {
	if name == "" {
		return
	}
	if k.s.policies != nil {
		p := k.s.policy(name)
		if p == policyKeep && source != name {
			p = k.s.policy(source)
		}
		switch p {
		case policyRemove:
			return
		case policyHash:
			v = StringValue(sha256Hex(valueText(v)))
		}
	}
	// The length checks are inline: nearly every name and value is short.
	if len(name) > MaxNameLength {
		var cut bool
		if name, cut = truncateRunes(name, MaxNameLength); cut {
			k.c.NamesTruncated++
			dedup = true
		}
	}
	if dedup && k.has(name) {
		return
	}
	if len(k.attrs) >= MaxCustomAttributes {
		k.c.AttributesTrimmed++
		return
	}
	if v.kind == valueString && len(v.str) > MaxValueLength {
		if s, cut := truncateRunes(v.str, MaxValueLength); cut {
			v.str = s
			k.c.ValuesTruncated++
		}
	}
	k.attrs = append(k.attrs, Attribute{Name: name, Value: v})
}

func (k *attrSink) has(name string) bool {
	for i := range k.attrs {
		if k.attrs[i].Name == name {
			return true
		}
	}
	return false
}

// valueText is the text a value is hashed from: the string itself, or the
// JSON form of a number or boolean.
func valueText(v Value) string {
	if v.kind == valueString {
		return v.str
	}
	return string(v.AppendJSON(nil))
}
