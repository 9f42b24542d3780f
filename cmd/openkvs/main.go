// Command openkvs is a self-hosted server for the Amazon Kinesis Video
// Streams APIs, and the client commands that talk to it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// -h prints a command's flags and is no failure.
	if err := run(os.Args[1:]); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "openkvs:", explain(os.Args[1:], err))
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
	case "clip":
		return clipCmd(args[1:])
	case "images":
		return imagesCmd(args[1:])
	case "streams":
		return streamsCmd(args[1:])
	case "bench":
		return benchCmd(args[1:])
	case "migrate":
		return migrateCmd(args[1:])
	case "healthcheck":
		return healthcheck(args[1:])
	case "version", "-version", "--version":
		return versionCmd(args[1:])
	case "help", "-h", "-help", "--help":
		// "openkvs help get" is "openkvs get --help".
		if len(args) > 1 {
			return run(append(args[1:], "--help"))
		}
		fmt.Print(usage)
		return nil
	}
	fmt.Fprint(os.Stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

// signalContext is the context of a command: it ends at Ctrl-C or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
