package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// member is one "key": value pair of a JSON object, with the value's raw
// bytes kept as written so that key order and number literals survive.
type member struct {
	key   string
	value json.RawMessage
}

// splitObject parses a JSON object into its members in order. It is the
// slow path, used for documents written through Put and imported documents
// whose metadata is incomplete; bulk imports of complete documents keep
// their bytes untouched.
func splitObject(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, errors.New("it is not a JSON object")
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key, _ := tok.(string)
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		out = append(out, member{key: key, value: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("there is more data after the JSON object")
	}
	return out, nil
}

func joinObject(members []member) []byte {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.key)
		b.Write(k)
		b.WriteByte(':')
		b.Write(compact(m.value))
	}
	b.WriteByte('}')
	return b.Bytes()
}

func compact(raw []byte) []byte {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

func setMember(ms []member, key string, value any) []member {
	raw, err := json.Marshal(value)
	if err != nil {
		panic(fmt.Sprintf("store: cannot encode metadata %s: %v", key, err))
	}
	for i := range ms {
		if ms[i].key == key {
			ms[i].value = raw
			return ms
		}
	}
	return append(ms, member{key: key, value: raw})
}

func removeMember(ms []member, key string) []member {
	out := ms[:0]
	for _, m := range ms {
		if m.key != key {
			out = append(out, m)
		}
	}
	return out
}

func getString(ms []member, key string) (string, bool, error) {
	for _, m := range ms {
		if m.key == key {
			var s string
			if err := json.Unmarshal(m.value, &s); err != nil {
				return "", true, fmt.Errorf("%s must be a string", key)
			}
			return s, true, nil
		}
	}
	return "", false, nil
}

// metadataFields are the values magpie owns in a document's @metadata.
type metadataFields struct {
	ID           string
	Collection   string
	ChangeVector string
	LastModified string
	Attachments  []AttachmentRef
}

// renderDocument rewrites the @metadata of a document body so that the
// system fields hold fields' values. Existing members keep their place;
// missing ones are appended. User metadata (Raven-Clr-Type and the like) is
// kept as it was.
func renderDocument(body []byte, f metadataFields) ([]byte, error) {
	ms, err := splitObject(body)
	if err != nil {
		return nil, err
	}
	var meta []member
	idx := -1
	for i, m := range ms {
		if m.key == "@metadata" {
			idx = i
			if meta, err = splitObject(m.value); err != nil {
				return nil, errors.New("@metadata must be a JSON object")
			}
		}
	}
	// @export-type marks items of an export stream; a stored document
	// carrying one would be mistaken for an attachment header on export.
	meta = removeMember(meta, "@export-type")
	meta = setMember(meta, "@collection", f.Collection)
	if len(f.Attachments) > 0 {
		meta = setMember(meta, "@flags", "HasAttachments")
		meta = setMember(meta, "@attachments", f.Attachments)
	} else {
		meta = removeMember(meta, "@attachments")
		if flags, ok, _ := getString(meta, "@flags"); ok && flags == "HasAttachments" {
			meta = removeMember(meta, "@flags")
		}
	}
	meta = setMember(meta, "@id", f.ID)
	meta = setMember(meta, "@change-vector", f.ChangeVector)
	meta = setMember(meta, "@last-modified", f.LastModified)
	metaRaw := joinObject(meta)
	if idx >= 0 {
		ms[idx].value = metaRaw
	} else {
		ms = append(ms, member{key: "@metadata", value: metaRaw})
	}
	return joinObject(ms), nil
}

// bodyCollection reads @metadata.@collection from a document body.
func bodyCollection(body []byte) (string, error) {
	ms, err := splitObject(body)
	if err != nil {
		return "", err
	}
	for _, m := range ms {
		if m.key != "@metadata" {
			continue
		}
		meta, err := splitObject(m.value)
		if err != nil {
			return "", errors.New("@metadata must be a JSON object")
		}
		c, _, err := getString(meta, "@collection")
		return c, err
	}
	return "", nil
}

// MaxDepth is the deepest nesting of objects and arrays a document may
// have: the same limit the export reader applies, so that everything the
// store accepts can be backed up and restored.
const MaxDepth = 512

// checkDepth refuses JSON nested deeper than MaxDepth.
func checkDepth(raw []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range raw {
		switch {
		case inString:
			if escaped {
				escaped = false
			} else if c == '\\' {
				escaped = true
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > MaxDepth {
				return fmt.Errorf("nests objects and arrays more than %d levels deep", MaxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
