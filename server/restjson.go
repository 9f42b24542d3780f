package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strings"

	"github.com/openkvs/openkvs/api"
)

// errorNamespace follows the exception name in x-amzn-ErrorType, as in
// real KVS answers; every client strips it (kvs-protocol.md §2.3).
const errorNamespace = ":https://kinesisvideo.amazonaws.com/doc/2017-09-30/"

// jsonContentType reports whether a request Content-Type may carry JSON.
// A missing one is accepted so that plain curl calls work.
func jsonContentType(v string) bool {
	if v == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(v)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasPrefix(mt, "application/x-amz-json-") || strings.HasSuffix(mt, "+json")
}

// decodeJSON decodes the request body that route read into in; an empty
// body is "{}".
func decodeJSON(r *http.Request, in any) error {
	if !jsonContentType(r.Header.Get("Content-Type")) {
		return api.UnsupportedMediaType("Content-Type %q is not supported; send application/json.", r.Header.Get("Content-Type"))
	}
	body := info(r.Context()).body
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(in); err != nil {
		return api.Serialization("%s", describeJSONError(err))
	}
	if dec.More() {
		return api.Serialization("The request body has data after the JSON object.")
	}
	return nil
}

// describeJSONError words a decoding error in the model's terms.
func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return fmt.Sprintf("The request body must be a JSON object, not %s.", article(typeErr.Value))
		}
		return fmt.Sprintf("Member %s must be %s, not JSON %s.", typeErr.Field, article(modelType(typeErr.Type)), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return fmt.Sprintf("The request body is not valid JSON: %v (at byte %d).", syntaxErr, syntaxErr.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "The request body is truncated JSON."
	default:
		return fmt.Sprintf("The request body is not valid: %v.", err)
	}
}

// article prefixes a noun with "a" or "an".
func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "an " + noun
	}
	return "a " + noun
}

// modelType names a Go field type the way the service model does.
func modelType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "integer"
	case reflect.Map:
		return "map"
	case reflect.Slice:
		return "list"
	case reflect.Struct:
		if t.Name() == "Timestamp" {
			return "timestamp (epoch seconds)"
		}
		return "structure"
	case reflect.Bool:
		return "boolean"
	}
	return t.String()
}

// writeJSON sends a 200 with a JSON body.
func writeJSON(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, r, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// writeError sends err as a restJson1 error (kvs-protocol.md §2.3). Errors
// that are not API errors are logged and answered with a bare 500.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := api.As(err)
	ri := info(r.Context())
	ri.errTyp = e.Type
	// A 501 is the answer for an operation not served yet, not a failure.
	if e.Status >= 500 && e.Status != http.StatusNotImplemented {
		ri.log.Error("request failed", "err", err)
	}
	key := "Message"
	if e.LowerMessage {
		key = "message"
	}
	b, _ := json.Marshal(map[string]string{"__type": e.Type, key: e.Message})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("x-amzn-ErrorType", e.Type+errorNamespace)
	w.WriteHeader(e.Status)
	w.Write(b)
}
