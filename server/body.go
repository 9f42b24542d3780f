package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/openkvs/openkvs/api"
)

// maxJSONBody bounds a JSON request body; the largest valid KVS request
// (GetMediaForFragmentList with 1000 numbers) is about 130 KB.
const maxJSONBody = 1 << 20

// smallBody is the largest JSON body read without drawing on the body
// budget. It is what net/http already keeps for every connection (4 KiB
// read and write buffers), so a flood of small bodies costs no more than
// its connections do (--max-conns-per-ip bounds those), and the ordinary
// calls, a few hundred bytes, never wait behind large bodies.
const smallBody = 4 << 10

// errBodyTooLarge is the answer to a JSON body over maxJSONBody.
var errBodyTooLarge = &api.Error{Type: "RequestEntityTooLargeException", Status: http.StatusRequestEntityTooLarge,
	Message: fmt.Sprintf("The request body is larger than %d bytes.", maxJSONBody)}

// errBodyBudget is the answer to a large body that found no room in the
// body budget within the request timeout.
var errBodyBudget = api.ServiceUnavailable("The server is receiving too many large request bodies at once; retry later.")

// readBody reads a JSON request body of at most maxJSONBody bytes within
// RequestTimeout, so that a slow or oversized body cannot hold a handler.
// A body over smallBody is read only into memory drawn from the server's
// body budget, waiting its turn within the same time; release gives that
// memory back (admit calls it once the request is authenticated or
// refused; calling it again does nothing). admit calls readBody once, after
// the headers passed authentication and before the body is hashed;
// handlers decode the bytes with decodeJSON.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), err error) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(s.cfg.RequestTimeout)
	// An error means the writer has no connection (tests): no deadline then.
	rc.SetReadDeadline(deadline)
	ctx, cancel := context.WithDeadline(r.Context(), deadline)
	defer cancel()
	if r.ContentLength >= 0 {
		body, release, err = s.readSized(ctx, r.Body, r.ContentLength)
	} else {
		body, release, err = s.readChunked(ctx, r.Body)
	}
	if err != nil {
		// The rest of the body is not read: net/http would otherwise drain
		// it, without a deadline, to reuse the connection.
		w.Header().Set("Connection", "close")
		return nil, nil, s.bodyError(err)
	}
	// Lift the deadline: net/http's background read, which watches for the
	// client going away, would cancel the request context when it passes,
	// and GetMedia streams long after its body is read.
	rc.SetReadDeadline(time.Time{})
	return body, release, nil
}

// bodyError words a failure to read a body as the API error it answers.
func (s *Server) bodyError(err error) error {
	var apiErr *api.Error
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.Is(err, os.ErrDeadlineExceeded):
		return &api.Error{Type: "RequestTimeoutException", Status: http.StatusRequestTimeout,
			Message: fmt.Sprintf("The request body was not received within %s.", s.cfg.RequestTimeout)}
	}
	return api.Serialization("Reading the request body failed: %v", err)
}

// readSized reads a body of known length n into one buffer of exactly n
// bytes, allocated only once n is drawn from the budget; a body over
// maxJSONBody is refused unread.
func (s *Server) readSized(ctx context.Context, body io.Reader, n int64) ([]byte, func(), error) {
	if n > maxJSONBody {
		return nil, nil, errBodyTooLarge
	}
	release, err := s.reserve(ctx, n)
	if err != nil {
		return nil, nil, err
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(body, buf); err != nil {
		release()
		return nil, nil, err
	}
	return buf, release, nil
}

// readChunked reads a body of unknown length (chunked). Its buffer doubles
// from smallBody up to maxJSONBody, each larger buffer drawn from the
// budget before it is allocated; the ones outgrown stay counted, as they
// stay in memory until the garbage collector frees them.
func (s *Server) readChunked(ctx context.Context, body io.Reader) ([]byte, func(), error) {
	var releases []func()
	release := func() {
		for _, r := range releases {
			r()
		}
	}
	buf := make([]byte, 0, smallBody)
	for {
		if len(buf) == cap(buf) {
			if len(buf) == maxJSONBody {
				return buf, release, endOfBody(body, release)
			}
			size := int64(min(2*cap(buf), maxJSONBody))
			r, err := s.reserve(ctx, size)
			if err != nil {
				release()
				return nil, nil, err
			}
			releases = append(releases, r)
			buf = append(make([]byte, 0, size), buf...)
		}
		n, err := body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			return buf, release, nil
		}
		if err != nil {
			release()
			return nil, nil, err
		}
	}
}

// endOfBody checks that a body of maxJSONBody bytes so far ends there,
// releasing its memory when it does not.
func endOfBody(body io.Reader, release func()) error {
	var one [1]byte
	n, err := io.ReadFull(body, one[:])
	switch {
	case n > 0:
		err = errBodyTooLarge
	case errors.Is(err, io.EOF):
		return nil
	}
	release()
	return err
}

// reserve draws n bytes from the body budget for a body over smallBody,
// waiting in line (first come, first served) until ctx ends, and returns
// the function that gives them back (at most once).
func (s *Server) reserve(ctx context.Context, n int64) (func(), error) {
	if n <= smallBody {
		return func() {}, nil
	}
	if err := s.bodies.Acquire(ctx, n); err != nil {
		return nil, errBodyBudget
	}
	return sync.OnceFunc(func() { s.bodies.Release(n) }), nil
}
