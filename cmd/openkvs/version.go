package main

import (
	"flag"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

const versionUsage = `Usage: openkvs version

Prints the version of this build: the module version, the commit it was built
from and its time (with "modified" when the work tree had changes), and the
Go version and platform.
`

func versionCmd(args []string) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	setUsage(fs, versionUsage)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("version takes no arguments, got %q", fs.Args())
	}
	bi, _ := debug.ReadBuildInfo()
	fmt.Println(formatVersion(bi))
	return nil
}

// formatVersion describes a build from its build information (nil when the
// binary has none): "openkvs v1.2.0 (commit 0123456789ab, 2026-05-01T12:00:00Z;
// go1.26.0 linux/amd64)". A build from a checkout without a module version
// is "(devel)" to Go; it shows as "devel", with the commit when the build
// recorded one, else a word on how to get one.
func formatVersion(bi *debug.BuildInfo) string {
	version := "devel"
	settings := map[string]string{}
	if bi != nil {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			version = v
		}
		for _, s := range bi.Settings {
			settings[s.Key] = s.Value
		}
	}
	var about []string
	if rev := settings["vcs.revision"]; rev != "" {
		about = append(about, "commit "+rev[:min(len(rev), 12)])
		if t := settings["vcs.time"]; t != "" {
			about = append(about, t)
		}
		if settings["vcs.modified"] == "true" {
			about = append(about, "modified")
		}
	} else if version == "devel" {
		about = append(about, "no commit recorded: go build in a git clone records it (-buildvcs)")
	}
	goVersion := runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	if len(about) == 0 {
		return fmt.Sprintf("openkvs %s (%s)", version, goVersion)
	}
	return fmt.Sprintf("openkvs %s (%s; %s)", version, strings.Join(about, ", "), goVersion)
}
