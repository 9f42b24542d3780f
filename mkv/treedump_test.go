package mkv

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
)

// dumpLine is one element line of a *.tree.txt dump next to the captures, written by an
// independent (Python) EBML walker: "[offset] Name id=0x.. size=N|UNKNOWN (size field K bytes)".
type dumpLine struct {
	level   int
	off     int64
	id      ID
	size    int64
	sizeLen int
}

var dumpRE = regexp.MustCompile(`^( *)\[(\d+)\] \S+ id=0x([0-9A-F]+) size=(\d+|UNKNOWN) \(size field (\d+) bytes\)`)

func readDump(t *testing.T, capture string) []dumpLine {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "kvs-samples", capture+".tree.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []dumpLine
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := dumpRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		off, _ := strconv.ParseInt(m[2], 10, 64)
		id, _ := strconv.ParseUint(m[3], 16, 32)
		size := UnknownSize
		if m[4] != "UNKNOWN" {
			size, _ = strconv.ParseInt(m[4], 10, 64)
		}
		n, _ := strconv.Atoi(m[5])
		out = append(out, dumpLine{level: len(m[1]) / 2, off: off, id: ID(id), size: size, sizeLen: n})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// dumpOffsets returns the offsets of the dump's lines at level with the given ID.
func dumpOffsets(lines []dumpLine, level int, id ID) []int64 {
	var out []int64
	for _, l := range lines {
		if l.level == level && l.id == id {
			out = append(out, l.off)
		}
	}
	return out
}
