package server

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
)

// connLimiter bounds the open connections of each client address. Every
// connection costs a goroutine and its buffers before it has sent a byte,
// so without a bound one client could hold as many as the server has file
// descriptors.
type connLimiter struct {
	max int
	log *slog.Logger

	mu   sync.Mutex
	open map[netip.Addr]int
}

// newConnLimiter returns a limiter of max connections per address.
func newConnLimiter(max int, log *slog.Logger) *connLimiter {
	return &connLimiter{max: max, log: log, open: map[netip.Addr]int{}}
}

// track is the http.Server ConnState hook. A new connection over its
// address's limit is closed at once, before its TLS handshake or request
// is read; net/http then reports it closed like any other, which is when
// every connection, refused or not, stops counting.
func (l *connLimiter) track(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		ip := remoteIP(c)
		if n := l.add(ip, 1); n > l.max {
			l.log.Debug("connection refused: too many from one address", "ip", ip, "open", n-1, "max", l.max)
			c.Close()
		}
	case http.StateClosed, http.StateHijacked:
		l.add(remoteIP(c), -1)
	}
}

// add changes the count of ip by delta and returns the new count.
func (l *connLimiter) add(ip netip.Addr, delta int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.open[ip] + delta
	if n == 0 {
		delete(l.open, ip)
	} else {
		l.open[ip] = n
	}
	return n
}

// remoteIP is the client address of c, an IPv4-mapped IPv6 address as
// IPv4; a connection without an IP address (a test pipe) counts as the
// zero Addr.
func remoteIP(c net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
