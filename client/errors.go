package client

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// APIError is an error answer of a KVS data-plane API, sent before any
// media (restJson1, kvs-protocol.md §2.3).
type APIError struct {
	Op         string // the operation: "PutMedia", "GetMedia"
	StatusCode int    // HTTP status
	Type       string // exception name, such as "ResourceNotFoundException"
	Message    string
}

// Error describes the answer.
func (e *APIError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s: %s", e.Op, e.StatusCode, e.Type, e.Message)
}

// throttled reports whether the request may succeed when sent again: a
// call-rate or connection limit (kvs-protocol.md §5.2), or a server fault.
func (e *APIError) throttled() bool {
	switch e.Type {
	case "ClientLimitExceededException", "ConnectionLimitExceededException":
		return true
	}
	return e.StatusCode >= 500
}

// apiError reads a restJson1 error response of operation op. The exception
// name is taken from x-amzn-ErrorType, else from the body's __type, as the
// SDKs do (kvs-protocol.md §2.3).
func apiError(op string, resp *http.Response) *APIError {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e struct {
		Type    string `json:"__type"`
		Message string `json:"Message"`
		Lower   string `json:"message"` // authentication errors (kvs-protocol.md §1.3)
	}
	json.Unmarshal(body, &e)
	typ, _, _ := strings.Cut(resp.Header.Get("x-amzn-ErrorType"), ":")
	if typ == "" {
		typ = e.Type[strings.LastIndex(e.Type, "#")+1:]
	}
	if e.Message == "" {
		e.Message = e.Lower
	}
	return &APIError{Op: op, StatusCode: resp.StatusCode, Type: typ, Message: e.Message}
}
