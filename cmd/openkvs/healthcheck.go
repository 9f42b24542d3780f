package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

const healthcheckUsage = `Usage: openkvs healthcheck [--addr HOST:PORT] [--tls-cert FILE] [--timeout D]

Asks the server on this machine for GET /healthz and exits 0 when it answers
200, else 1 with the reason on stderr: a health probe for images without
curl (Docker's HEALTHCHECK). --addr and --tls-cert are read as serve reads
them, from OPENKVS_ADDR and OPENKVS_TLS_CERT too, so the probe finds a
server configured through the environment.
`

func healthcheck(args []string) error {
	var addr, tlsCert string
	var timeout time.Duration
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.StringVar(&addr, "addr", "127.0.0.1:4567", "`host:port` the server listens on")
	fs.StringVar(&tlsCert, "tls-cert", "", "the server's certificate `file`: probe over HTTPS")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long the probe may take")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("healthcheck takes no arguments, got %q", fs.Args())
	}
	// An address on all interfaces (0.0.0.0:4567, :4567) dials this
	// machine, as the probe should.
	url := "http://" + addr + "/healthz"
	if tlsCert != "" {
		url = "https://" + addr + "/healthz"
	}
	client := &http.Client{Timeout: timeout, Transport: &http.Transport{
		// The probe asks a server on this machine whether it is alive; it
		// sends nothing secret, and the certificate names the host clients
		// use, not the loopback address probed.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s: %s", url, resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
