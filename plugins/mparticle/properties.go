package mparticle

import (
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file turns the `properties` JSON string of a CustomEvent or Purchase
// into custom attributes, without encoding/json: it runs for every such
// event, and top-level scalar members (the usual case) become attributes
// that point into the properties string, with no allocation.
//
// Flattening, since mParticle custom attribute values are scalars:
//   - a string, number or boolean member is one attribute;
//   - a null member is left out (null values are omitted, docs/mapping.md's opening paragraph);
//   - an object member is flattened with dotted names ({"a":{"b":1}} gives
//     "a.b": 1), down to maxPropertyDepth levels; deeper objects are kept as
//     their JSON text;
//   - an array member is kept as its JSON text (a string attribute).
//
// A properties string that is not a JSON object (invalid JSON, an array, a
// bare value) is sent whole as the string attribute "properties": it is never
// an error, and nothing is lost. An empty string is left out.

// maxPropertyDepth bounds object flattening.
const maxPropertyDepth = 4

// maxJSONNesting bounds how deep the scanner follows nested values, so a
// hostile properties string cannot exhaust the stack.
const maxJSONNesting = 64

// propertyScanner is a validating JSON scanner over a properties string.
// With emit off it only validates; with emit on it also adds attributes.
type propertyScanner struct {
	s    string
	i    int
	sink *attrSink
	emit bool
}

// addProperties adds the attributes of a properties JSON string to sink.
func (k *attrSink) addProperties(props string) {
	if strings.TrimSpace(props) == "" {
		return
	}
	p := propertyScanner{s: props}
	// A first pass validates the whole text, so an invalid string never
	// leaves half of its members behind.
	if !p.object("", 0) || p.skipSpace() != len(p.s) {
		k.add(roleProperties.field(), roleProperties.field(), StringValue(props), true)
		return
	}
	p = propertyScanner{s: props, sink: k, emit: true}
	p.object("", 0)
}

func (p *propertyScanner) skipSpace() int {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return p.i
		}
	}
	return p.i
}

// object scans an object; prefix is the dotted name of its members ("" at
// the top). depth counts object levels for flattening.
func (p *propertyScanner) object(prefix string, depth int) bool {
	if p.skipSpace() >= len(p.s) || p.s[p.i] != '{' {
		return false
	}
	p.i++
	if p.skipSpace() < len(p.s) && p.s[p.i] == '}' {
		p.i++
		return true
	}
	for {
		p.skipSpace()
		key, ok := p.str()
		if !ok {
			return false
		}
		if p.skipSpace() >= len(p.s) || p.s[p.i] != ':' {
			return false
		}
		p.i++
		name := key
		if p.emit && prefix != "" {
			name = prefix + "." + key
		}
		if !p.member(name, depth) {
			return false
		}
		if p.skipSpace() >= len(p.s) {
			return false
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// member scans one member value and, when emitting, adds it.
func (p *propertyScanner) member(name string, depth int) bool {
	if p.skipSpace() >= len(p.s) {
		return false
	}
	start := p.i
	switch c := p.s[p.i]; {
	case c == '{':
		if depth+1 < maxPropertyDepth {
			return p.object(name, depth+1)
		}
		if !p.skipValue(depth) {
			return false
		}
		p.add(name, StringValue(p.s[start:p.i]))
	case c == '[':
		if !p.skipValue(depth) {
			return false
		}
		p.add(name, StringValue(p.s[start:p.i]))
	case c == '"':
		s, ok := p.str()
		if !ok {
			return false
		}
		p.add(name, StringValue(s))
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(p.s[p.i:], lit) {
				p.i += len(lit)
				switch lit {
				case "true":
					p.add(name, BoolValue(true))
				case "false":
					p.add(name, BoolValue(false))
				}
				return true
			}
		}
		return false
	default:
		lit, ok := p.number()
		if !ok {
			return false
		}
		p.add(name, numberValue(lit))
	}
	return true
}

func (p *propertyScanner) add(name string, v Value) {
	if p.emit {
		p.sink.add(name, name, v, true)
	}
}

// skipValue scans any JSON value without adding anything.
func (p *propertyScanner) skipValue(depth int) bool {
	if depth > maxJSONNesting || p.skipSpace() >= len(p.s) {
		return false
	}
	switch c := p.s[p.i]; {
	case c == '{' || c == '[':
		closing := byte('}')
		if c == '[' {
			closing = ']'
		}
		p.i++
		if p.skipSpace() < len(p.s) && p.s[p.i] == closing {
			p.i++
			return true
		}
		for {
			if c == '{' {
				p.skipSpace()
				if _, ok := p.rawStr(); !ok {
					return false
				}
				if p.skipSpace() >= len(p.s) || p.s[p.i] != ':' {
					return false
				}
				p.i++
			}
			if !p.skipValue(depth + 1) {
				return false
			}
			if p.skipSpace() >= len(p.s) {
				return false
			}
			switch p.s[p.i] {
			case ',':
				p.i++
			case closing:
				p.i++
				return true
			default:
				return false
			}
		}
	case c == '"':
		_, ok := p.rawStr()
		return ok
	case c == 't' || c == 'f' || c == 'n':
		for _, lit := range [...]string{"true", "false", "null"} {
			if strings.HasPrefix(p.s[p.i:], lit) {
				p.i += len(lit)
				return true
			}
		}
		return false
	default:
		_, ok := p.number()
		return ok
	}
}

// rawStr scans a JSON string and returns its text between the quotes, still
// escaped; hasEscape reports a backslash in it.
func (p *propertyScanner) rawStr() (raw string, ok bool) {
	raw, _, ok = p.rawStrEsc()
	return raw, ok
}

func (p *propertyScanner) rawStrEsc() (raw string, hasEscape, ok bool) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return "", false, false
	}
	start := p.i + 1
	for i := start; i < len(p.s); i++ {
		switch c := p.s[i]; {
		case c == '"':
			p.i = i + 1
			return p.s[start:i], hasEscape, true
		case c == '\\':
			hasEscape = true
			if i+1 >= len(p.s) {
				return "", false, false
			}
			switch p.s[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+5 >= len(p.s) {
					return "", false, false
				}
				for j := i + 2; j < i+6; j++ {
					if !isHex(p.s[j]) {
						return "", false, false
					}
				}
				i += 5
			default:
				return "", false, false
			}
		case c < 0x20:
			return "", false, false
		}
	}
	return "", false, false
}

// str scans a JSON string and returns its value. Strings without escapes are
// substrings of the properties text; only escaped ones are decoded (and,
// when emitting, allocated).
func (p *propertyScanner) str() (string, bool) {
	raw, hasEscape, ok := p.rawStrEsc()
	if !ok || !hasEscape || !p.emit {
		return raw, ok
	}
	return unescapeJSON(raw), true
}

// number scans a JSON number and returns its text.
func (p *propertyScanner) number() (string, bool) {
	s, start := p.s, p.i
	i := start
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && s[i] >= '1' && s[i] <= '9':
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	default:
		return "", false
	}
	if i < len(s) && s[i] == '.' {
		i++
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return "", false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return "", false
		}
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
	}
	p.i = i
	return s[start:i], true
}

// numberValue converts a valid JSON number literal: an integer that fits
// int64 stays an integer, anything else becomes a float; a literal beyond
// float64 range (1e400) is kept as its text, since it has no JSON number
// form that every reader accepts.
func numberValue(lit string) Value {
	if !strings.ContainsAny(lit, ".eE") {
		if n, err := strconv.ParseInt(lit, 10, 64); err == nil {
			return IntValue(n)
		}
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || !finite(f) {
		return StringValue(lit)
	}
	return FloatValue(f)
}

// unescapeJSON decodes the escapes of a valid JSON string body. Lone
// surrogates become U+FFFD, as encoding/json does.
func unescapeJSON(raw string) string {
	b := make([]byte, 0, len(raw))
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c != '\\' {
			b = append(b, c)
			continue
		}
		i++
		switch raw[i] {
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r := hex4(raw[i+1 : i+5])
			i += 4
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if i+6 < len(raw) && raw[i+1] == '\\' && raw[i+2] == 'u' {
					r2 = hex4(raw[i+3 : i+7])
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
					i += 6
				} else {
					r = utf8.RuneError
				}
			}
			b = utf8.AppendRune(b, r)
		default: // '"', '\\', '/'
			b = append(b, raw[i])
		}
	}
	return string(b)
}

func hex4(s string) rune {
	var r rune
	for i := 0; i < 4; i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		default:
			c = c - 'A' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
