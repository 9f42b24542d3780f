package main

import (
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// usage is the help of `openkvs` itself.
const usage = `Usage: openkvs COMMAND [flags]

openkvs is a self-hosted server for the Amazon Kinesis Video Streams APIs, and
the client commands that talk to it.

Commands:
  serve                 run the server
  put --stream NAME FILE|-
                        stream an MKV file or stdin to PutMedia
  get --stream NAME [-o FILE]
                        read the stream with GetMedia into a playable MKV file
  fragments --stream NAME [--from TIME] [--to TIME]
                        list the stream's fragments (ListFragments) as a table
  clip --stream NAME --from TIME --to TIME -o FILE
                        write a time range as one MP4 file (GetClip)
  images --stream NAME --from TIME --to TIME [--every 1s] -o DIR
                        save an image every --every (GetImages) as files
  streams list|create|describe|delete|update-retention
                        manage streams (ListStreams, CreateStream, ...)
  bench [--quick]       measure the server on loopback
  migrate --data DIR --catalog postgres://... --blobs s3://...
                        copy a data directory into PostgreSQL and S3 (for a cluster)
  healthcheck           exit 0 if the local server's /healthz answers 200 (for containers)
  version               print the version and commit of this build

"openkvs COMMAND --help" lists a command's flags. Every flag can also be set
with the OPENKVS_* environment variable its help names (--public-url is
OPENKVS_PUBLIC_URL); a flag on the command line wins.

The client commands reach the server at --endpoint, else OPENKVS_ENDPOINT,
else AWS_ENDPOINT_URL_KINESIS_VIDEO or AWS_ENDPOINT_URL (as the AWS CLI and
SDKs read them), else http://127.0.0.1:4567. They sign requests with the
credentials the AWS CLI would use, and send them unsigned without any.
`

// commandUsage is each command's help text before its flags: how to call
// it and what it does. The flag set's name picks the entry.
var commandUsage = map[string]string{
	"serve":                    serveUsage,
	"put":                      putUsage,
	"get":                      getUsage,
	"fragments":                fragmentsUsage,
	"clip":                     clipUsage,
	"images":                   imagesUsage,
	"bench":                    benchUsage,
	"migrate":                  migrateUsage,
	"healthcheck":              healthcheckUsage,
	"streams list":             streamsListUsage,
	"streams create":           streamsCreateUsage,
	"streams describe":         streamsDescribeUsage,
	"streams delete":           streamsDeleteUsage,
	"streams update-retention": streamsRetentionUsage,
}

const serveUsage = `Usage: openkvs serve [flags]

Runs the server: the Kinesis Video Streams control plane, PutMedia, GetMedia,
ListFragments and GetMediaForFragmentList, with its catalog and fragments in
--data (the catalog in PostgreSQL with --catalog). Authentication is off only on a loopback address: elsewhere give
--credentials FILE (SigV4 access keys; SIGHUP re-reads the file) or
--insecure.
`

const putUsage = `Usage: openkvs put --stream NAME [--create] [--realtime] [--retry-for DURATION] [--buffer BYTES] FILE|-

Streams an MKV file (or stdin, -) to PutMedia with producer wall-clock
timecodes (ABSOLUTE), re-sending what was not yet persisted after a dropped
connection. Reconnects back off from 0.25 s to 10 s, asking GetDataEndpoint
each time. Other containers convert without re-encoding:
ffmpeg -i in.mp4 -c copy -f matroska - | openkvs put --stream NAME -
`

const benchUsage = `Usage: openkvs bench [--quick] [--json FILE] [--target URL]
       openkvs bench --cluster --catalog postgres://... --blobs s3://... [--quick]

Measures an openkvs server (its own child, or --target) on loopback against
baselines measured in the same run, and prints a table. With --cluster it
starts nodes sharing the catalog and bucket given and measures ingest on
them beside the embedded backends, failover after kill -9 of a stream's
owner, and fan-out over 3 nodes beside 1.
`

// setUsage makes text, then the flags, the help of fs.
func setUsage(fs *flag.FlagSet, text string) {
	fs.Usage = func() { printUsage(fs.Output(), fs, text) }
}

// printUsage prints text, then each flag of fs in one style for every
// command: the flag with two dashes (one for a one-letter flag) and its
// value, then what it does, its default (with a unit where it has one) and
// its environment variable. Go's own printer shows one dash and floats
// such as 1.25e+07.
func printUsage(w io.Writer, fs *flag.FlagSet, text string) {
	fmt.Fprint(w, text)
	first := true
	fs.VisitAll(func(f *flag.Flag) {
		name, help := flag.UnquoteUsage(f)
		if strings.HasPrefix(help, "internal:") {
			return
		}
		if first {
			fmt.Fprint(w, "\nFlags:\n")
			first = false
		}
		dashes := "--"
		if len(f.Name) == 1 {
			dashes = "-"
		}
		line := "  " + dashes + f.Name
		switch name {
		case "":
		case "int", "uint", "float":
			line += " N" // Go names the type when the help names no value
		default:
			line += " " + strings.ToUpper(name)
		}
		fmt.Fprintln(w, line)
		for _, l := range wrap(help, 72) {
			fmt.Fprintln(w, "      "+l)
		}
		about := "environment " + envName(f.Name)
		if d := formatDefault(f, name); d != "" {
			about = "default " + d + "; " + about
		}
		fmt.Fprintln(w, "      "+about)
	})
}

// envName is the environment variable that sets flag name.
func envName(name string) string {
	return "OPENKVS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// formatDefault is f's default as help shows it, "" for a zero value: a
// number in plain digits, with a human size when it counts bytes, and a
// duration without trailing zero units.
func formatDefault(f *flag.Flag, valueName string) string {
	var v any
	if g, ok := f.Value.(flag.Getter); ok {
		v = g.Get()
	}
	switch d := v.(type) {
	case bool:
		if d {
			return "true"
		}
		return ""
	case string:
		if f.DefValue == "" {
			return ""
		}
		return f.DefValue
	case time.Duration:
		def, err := time.ParseDuration(f.DefValue)
		if err != nil || def == 0 {
			return f.DefValue
		}
		return formatDuration(def)
	}
	n, err := strconv.ParseFloat(f.DefValue, 64)
	if err != nil {
		return f.DefValue
	}
	if n == 0 {
		return ""
	}
	s := strconv.FormatFloat(n, 'f', -1, 64)
	switch strings.ToLower(valueName) {
	case "bytes":
		s += " (" + formatBytes(n) + ")"
	case "bytes/s":
		s += " (" + formatBytes(n) + "/s)"
	}
	return s
}

// formatDuration prints d as Go does without its zero trailing units:
// 5m, not 5m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatBytes prints a byte count for people: binary units for a whole
// number of KiB, MiB, GiB or TiB under 1024 (64 MiB), else decimal ones
// with one decimal at most (12.5 MB).
func formatBytes(n float64) string {
	binary := []string{"KiB", "MiB", "GiB", "TiB"}
	for i := len(binary) - 1; i >= 0; i-- {
		size := math.Exp2(float64(10 * (i + 1)))
		if n >= size && n < 1024*size && math.Mod(n, size) == 0 {
			return strconv.FormatFloat(n/size, 'f', -1, 64) + " " + binary[i]
		}
	}
	decimal := []string{"kB", "MB", "GB", "TB"}
	for i := len(decimal) - 1; i >= 0; i-- {
		if size := math.Pow(1000, float64(i+1)); n >= size {
			return strconv.FormatFloat(math.Round(n/size*10)/10, 'f', -1, 64) + " " + decimal[i]
		}
	}
	return strconv.FormatFloat(n, 'f', -1, 64) + " B"
}

// wrap breaks text into lines of at most width characters at spaces.
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len(line)+1+len(word) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// parseFlags gives fs the help of its command, applies OPENKVS_*
// environment variables as flag defaults, then parses the command line.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := prepareFlags(fs); err != nil {
		return err
	}
	return fs.Parse(args)
}

// prepareFlags gives fs the help of its command and sets each flag whose
// OPENKVS_* variable is set.
func prepareFlags(fs *flag.FlagSet) error {
	if text, ok := commandUsage[fs.Name()]; ok {
		setUsage(fs, text)
	}
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := envName(f.Name)
		if v, ok := os.LookupEnv(name); ok && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	return envErr
}
