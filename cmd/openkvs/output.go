package main

import (
	"fmt"
	"os"

	"golang.org/x/term"
)

// checkGetOutput refuses what `openkvs get` cannot write: another format
// than MKV, or binary media to a terminal, which would fill it with
// garbage and can upset it.
func checkGetOutput(format, output, stream string) error {
	switch format {
	case "mkv":
	case "mp4":
		// GetMedia returns MKV; MP4 of a time range is GetClip's.
		return fmt.Errorf("get writes MKV (GetMedia); for MP4 of a time range use clip: "+
			"openkvs clip --stream %s --from TIME --to TIME -o x.mp4", stream)
	default:
		return fmt.Errorf("--format %q: want mkv (MP4 of a time range: openkvs clip)", format)
	}
	if output == "-" && term.IsTerminal(int(os.Stdout.Fd())) {
		return fmt.Errorf("refusing to write MKV to a terminal: give -o FILE, or pipe it to a player (openkvs get --stream %s | ffplay -)", stream)
	}
	return nil
}
