// Command openkvs is a self-hosted server for the Amazon Kinesis Video
// Streams APIs, and the client commands that talk to it.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

const usage = `openkvs: a self-hosted server for the Kinesis Video Streams APIs.

Usage:
  openkvs serve [flags]   run the server (openkvs serve -h lists the flags)
  openkvs put --stream NAME [--create] [--realtime] FILE|-
                          stream an MKV file or stdin to PutMedia
  openkvs get --stream NAME [--start now|earliest|fragment=N|producer=TIME|server=TIME]
              [--follow] [--raw] [-o FILE|-]
                          read the stream with GetMedia into a playable MKV file
  openkvs fragments --stream NAME [--from TIME] [--to TIME] [--server-time]
                          list the stream's fragments (ListFragments) as a table
  openkvs bench [--quick] [--json FILE] [--target URL]   measure the server on loopback
  openkvs healthcheck [--addr HOST:PORT]   exit 0 if the local server's /healthz is 200

Every flag can also be set with an OPENKVS_* environment variable named
after it: --public-url is OPENKVS_PUBLIC_URL. A flag on the command line wins.

Authentication is off only on a loopback address: elsewhere give
--credentials FILE (SigV4 access keys; SIGHUP re-reads the file) or --insecure.
`

func main() {
	// -h prints a command's flags and is no failure.
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "openkvs:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(args[1:])
	case "put":
		return put(args[1:])
	case "get":
		return get(args[1:])
	case "fragments":
		return fragments(args[1:])
	case "bench":
		return benchCmd(args[1:])
	case "healthcheck":
		return healthcheck(args[1:])
	case "help", "-h", "--help":
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// parseFlags applies OPENKVS_* environment variables as flag defaults, then
// the command line.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "OPENKVS_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return envErr
	}
	return fs.Parse(args)
}
