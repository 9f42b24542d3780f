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
		// GetClip would return MP4; until openkvs serves it, MKV remuxes
		// to MP4 without re-encoding.
		return fmt.Errorf("--format mp4 needs GetClip, which openkvs does not serve yet; write MKV and remux it: "+
			"openkvs get --stream %s -o x.mkv && ffmpeg -i x.mkv -c copy x.mp4", stream)
	default:
		return fmt.Errorf("--format %q: want mkv (or mp4, once openkvs serves GetClip)", format)
	}
	if output == "-" && term.IsTerminal(int(os.Stdout.Fd())) {
		return fmt.Errorf("refusing to write MKV to a terminal: give -o FILE, or pipe it to a player (openkvs get --stream %s | ffplay -)", stream)
	}
	return nil
}
