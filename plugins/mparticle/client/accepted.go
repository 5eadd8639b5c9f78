package client

import (
	"encoding/json"
	"strconv"
	"strings"
)

// acceptedErrors reads the body of a 2xx answer to a bulk request. mParticle
// documents that a bulk request returns 202 even when some of its batches
// fail, with the errors in the body, but not the body's shape; this reads
// {"errors":[...]} entries naming their batch by position ("batch_index" or
// "index", 0-based in the request) or by "source_request_id", and returns
// the message per batch position. all is non-empty when the body reports
// errors that name no batch of this request.
func acceptedErrors(body []byte, r *request) (byBatch map[int]string, all string) {
	body = trimSpace(body)
	if len(body) == 0 || body[0] != '{' || !validJSON(body) {
		return nil, ""
	}
	list, ok := member(body, "errors")
	if !ok || len(list) == 0 || list[0] != '[' {
		return nil, ""
	}
	var unattributed []string
	it := newArrayIter(list)
	for {
		e, more := it.next()
		if !more {
			break
		}
		b := entryBatch(e, r)
		msg := entryMessage(e)
		if b < 0 {
			unattributed = append(unattributed, msg)
			continue
		}
		if byBatch == nil {
			byBatch = make(map[int]string)
		}
		if prev, dup := byBatch[b]; dup {
			msg = prev + "; " + msg
		}
		byBatch[b] = clipMessage(msg)
	}
	if len(unattributed) > 0 {
		return nil, clipMessage(strings.Join(unattributed, "; "))
	}
	return byBatch, ""
}

// entryBatch returns the position in r of the batch an error entry names,
// or -1.
func entryBatch(e []byte, r *request) int {
	if len(e) == 0 || e[0] != '{' {
		return -1
	}
	for _, key := range [...]string{"batch_index", "index"} {
		if v, ok := member(e, key); ok {
			if n, err := strconv.Atoi(string(v)); err == nil && n >= 0 && n < len(r.batches) {
				return n
			}
		}
	}
	if id := jsonStringMember(e, "source_request_id"); id != "" {
		for b := range r.batches {
			if r.sourceRequestID(&r.batches[b]) == id {
				return b
			}
		}
	}
	return -1
}

// jsonStringMember returns the string value of member name of a JSON object,
// or "" when it is absent or not a string.
func jsonStringMember(obj []byte, name string) string {
	v, ok := member(obj, name)
	if !ok || len(v) == 0 || v[0] != '"' {
		return ""
	}
	if !hasBackslash(v) {
		return string(v[1 : len(v)-1])
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return ""
	}
	return s
}
