package access

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"
)

// maxAccessKeyID is the longest access key id accepted (AWS allows up to 128 characters).
const maxAccessKeyID = 128

// The JSON shapes of the credentials file. Lists are decoded element by element so that every
// error can name where it is (keys[2].policy[0].streams[1]).
type fileJSON struct {
	Keys []json.RawMessage `json:"keys"`
}

type keyJSON struct {
	AccessKeyID     string             `json:"accessKeyId"`
	SecretAccessKey string             `json:"secretAccessKey"`
	Policy          *[]json.RawMessage `json:"policy"` // nil when absent: the key may do everything
}

type statementJSON struct {
	Actions []string `json:"actions"`
	Streams []string `json:"streams"` // nil when absent: every stream
}

// Load reads and validates a credentials file (format in the package documentation).
func Load(path string) (*Store, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("credentials file: %w", err)
	}
	s, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("credentials file %s: %w", path, err)
	}
	return s, nil
}

// Parse validates the contents of a credentials file. It reports every problem found, one per
// line, each naming the key index and field.
func Parse(data []byte) (*Store, error) {
	var f fileJSON
	if err := decodeStrict(data, &f); err != nil {
		return nil, locate(data, err)
	}
	if len(f.Keys) == 0 {
		return nil, errors.New(`"keys" is missing or empty: at least one key is required`)
	}
	s := &Store{keys: make(map[string]*key, len(f.Keys))}
	firstIndex := map[string]int{}
	var errs []error
	for i, raw := range f.Keys {
		id, k, err := parseKey(raw)
		where := fmt.Sprintf("keys[%d]", i)
		if id != "" {
			where += fmt.Sprintf(" (accessKeyId %q)", id)
		}
		if err != nil {
			errs = append(errs, within(where, err)...)
			continue
		}
		if j, dup := firstIndex[id]; dup {
			errs = append(errs, within(where, fieldErr("accessKeyId", "duplicate of keys[%d]", j))...)
			continue
		}
		firstIndex[id] = i
		s.keys[id] = k
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return s, nil
}

// parseKey validates one entry of "keys". It returns the access key id whenever it could be read,
// so errors can name it.
func parseKey(raw json.RawMessage) (string, *key, error) {
	var kj keyJSON
	if err := decodeStrict(raw, &kj); err != nil {
		return "", nil, err
	}
	var errs []error
	if err := checkAccessKeyID(kj.AccessKeyID); err != nil {
		errs = append(errs, &fieldError{"accessKeyId", err})
	}
	switch {
	case kj.SecretAccessKey == "":
		errs = append(errs, fieldErr("secretAccessKey", "missing or empty"))
	case strings.TrimSpace(kj.SecretAccessKey) != kj.SecretAccessKey:
		errs = append(errs, fieldErr("secretAccessKey", "has leading or trailing white space"))
	}
	k := &key{secret: kj.SecretAccessKey}
	if kj.Policy != nil {
		if len(*kj.Policy) == 0 {
			errs = append(errs, fieldErr("policy", `empty list grants nothing; omit "policy" to allow everything`))
		}
		for j, raw := range *kj.Policy {
			st, err := parseStatement(raw)
			if err != nil {
				errs = append(errs, within(fmt.Sprintf("policy[%d]", j), err)...)
				continue
			}
			k.policy = append(k.policy, st)
		}
	}
	return kj.AccessKeyID, k, errors.Join(errs...)
}

// parseStatement validates one policy statement.
func parseStatement(raw json.RawMessage) (statement, error) {
	var sj statementJSON
	if err := decodeStrict(raw, &sj); err != nil {
		return statement{}, err
	}
	var st statement
	var errs []error
	if len(sj.Actions) == 0 {
		errs = append(errs, fieldErr("actions", `missing or empty, e.g. ["kinesisvideo:PutMedia"]`))
	}
	for i, a := range sj.Actions {
		p, err := parseActionPattern(a)
		if err != nil {
			errs = append(errs, &fieldError{fmt.Sprintf("actions[%d]", i), err})
			continue
		}
		st.actions = append(st.actions, p)
	}
	switch {
	case sj.Streams == nil:
		st.streams = []pattern{{wildcard: true}}
	case len(sj.Streams) == 0:
		errs = append(errs, fieldErr("streams", `empty list matches nothing; omit "streams" or use ["*"] for every stream`))
	}
	for i, s := range sj.Streams {
		p, err := parseStreamPattern(s)
		if err != nil {
			errs = append(errs, &fieldError{fmt.Sprintf("streams[%d]", i), err})
			continue
		}
		st.streams = append(st.streams, p)
	}
	return st, errors.Join(errs...)
}

// checkAccessKeyID accepts 1–128 characters of [A-Za-z0-9._-]: an id appears in the SigV4
// Credential parameter, where '/', ',' and spaces would break parsing.
func checkAccessKeyID(id string) error {
	if id == "" {
		return errors.New("missing or empty")
	}
	if len(id) > maxAccessKeyID {
		return fmt.Errorf("longer than %d characters", maxAccessKeyID)
	}
	for _, c := range id {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%q: only letters, digits, '.', '_' and '-' are allowed", id)
		}
	}
	return nil
}

// decodeStrict decodes exactly one JSON value into the struct v points to, rejecting unknown
// fields and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) {
			if typeErr.Field == "" {
				return fmt.Errorf("must be %s, not a JSON %s", describe(typeErr.Type), typeErr.Value)
			}
			return fieldErr(typeErr.Field, "must be %s, not a JSON %s", describe(typeErr.Type), typeErr.Value)
		}
		// encoding/json reports an unknown field only as text: json: unknown field "x".
		if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
			return fmt.Errorf("unknown field %s (allowed: %s)", name, strings.Join(jsonFields(v), ", "))
		}
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("unexpected data after the JSON object")
	}
	return nil
}

// describe names a Go type of the file format the way a JSON author thinks of it.
func describe(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "a list of strings"
		}
		return "a list of objects"
	case reflect.Pointer:
		return describe(t.Elem())
	}
	return "an object"
}

// locate adds line and column to a JSON syntax error of the whole file.
func locate(data []byte, err error) error {
	var syntaxErr *json.SyntaxError
	if !errors.As(err, &syntaxErr) {
		return err
	}
	// Offset counts the bytes read up to and including the offending one.
	before := data[:min(int(syntaxErr.Offset), len(data))]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n') - 1
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// jsonFields lists the JSON field names of the struct v points to.
func jsonFields(v any) []string {
	t := reflect.TypeOf(v).Elem()
	names := make([]string, t.NumField())
	for i := range names {
		names[i], _, _ = strings.Cut(t.Field(i).Tag.Get("json"), ",")
	}
	return names
}

// fieldError is a problem at a path inside the file, e.g. keys[1].policy[0].actions[2].
type fieldError struct {
	path string
	err  error
}

func (e *fieldError) Error() string { return e.path + ": " + e.err.Error() }

func (e *fieldError) Unwrap() error { return e.err }

func fieldErr(path, format string, args ...any) *fieldError {
	return &fieldError{path, fmt.Errorf(format, args...)}
}

// within flattens err (possibly joined) and puts each problem under the path where.
func within(where string, err error) []error {
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		var parts []error
		for _, e := range joined.Unwrap() {
			parts = append(parts, within(where, e)...)
		}
		return parts
	}
	if fe, ok := err.(*fieldError); ok {
		return []error{&fieldError{where + "." + fe.path, fe.err}}
	}
	return []error{&fieldError{where, err}}
}
