package currents

import (
	"errors"
	"fmt"
	"path"
)

// TypePatterns is a validated list of event type glob patterns, in
// path.Match syntax. Event types hold no "/", so "*" spans dots:
// "users.messages.*" matches every message type.
type TypePatterns []string

// ParseTypePatterns validates patterns; option names the config field they
// come from, for the error.
func ParseTypePatterns(option string, patterns []string) (TypePatterns, error) {
	for _, p := range patterns {
		if p == "" {
			return nil, fmt.Errorf("%s: %w", option, errors.New("empty pattern"))
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%s: pattern %q: %w", option, p, err)
		}
	}
	return append(TypePatterns(nil), patterns...), nil
}

// MatchAny reports whether eventType matches one of the patterns; false for none.
func (p TypePatterns) MatchAny(eventType string) bool {
	for _, pat := range p {
		if ok, _ := path.Match(pat, eventType); ok {
			return true
		}
	}
	return false
}

// TypeFilter selects event types by the event_types and exclude_event_types
// options that the input and the mapping share. The zero value selects
// every type.
type TypeFilter struct {
	include TypePatterns
	exclude TypePatterns
}

// NewTypeFilter returns a filter that selects the types matching any include
// pattern (every type when include is empty) and no exclude pattern. Errors
// name the option at fault (event_types, exclude_event_types).
func NewTypeFilter(include, exclude []string) (TypeFilter, error) {
	var f TypeFilter
	var err error
	if f.include, err = ParseTypePatterns("event_types", include); err != nil {
		return TypeFilter{}, err
	}
	if f.exclude, err = ParseTypePatterns("exclude_event_types", exclude); err != nil {
		return TypeFilter{}, err
	}
	return f, nil
}

// Selective reports whether the filter can reject a type.
func (f TypeFilter) Selective() bool { return len(f.include) > 0 || len(f.exclude) > 0 }

// Match reports whether the event type is selected.
func (f TypeFilter) Match(eventType string) bool {
	if f.exclude.MatchAny(eventType) {
		return false
	}
	return len(f.include) == 0 || f.include.MatchAny(eventType)
}
