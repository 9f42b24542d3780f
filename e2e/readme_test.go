package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// readmeBlock is one fenced code block of README.md.
type readmeBlock struct {
	line     int    // line of the opening fence
	lang     string // the info string's first word
	runnable bool   // the info string has the word "runnable"
	code     string
}

// readmeBlocks returns the fenced code blocks of the Markdown file at path
// (CommonMark fences, not indented: ``` or ~~~, closed by at least as
// many of the same character).
func readmeBlocks(t *testing.T, path string) []readmeBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// A backtick fence's info string holds no backtick: "```` ```sh ````"
	// starting a line is inline code.
	opening := regexp.MustCompile("^(```+)([^`]*)$|^(~~~+)(.*)$")
	var blocks []readmeBlock
	var open *readmeBlock
	var fence string
	var code strings.Builder
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if open != nil {
			if strings.HasPrefix(line, fence) && strings.Trim(line, fence[:1]+" \t") == "" {
				open.code = code.String()
				blocks = append(blocks, *open)
				open = nil
				continue
			}
			code.WriteString(line + "\n")
			continue
		}
		m := opening.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		fence = m[1] + m[3]
		words := strings.Fields(m[2] + m[4])
		open = &readmeBlock{line: n, runnable: slices.Contains(words, "runnable")}
		if len(words) > 0 {
			open.lang = words[0]
		}
		code.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if open != nil {
		t.Fatalf("%s:%d: code block never closed", path, open.line)
	}
	return blocks
}

// TestReadme runs README.md's runnable examples (code fences whose info
// string has the word "runnable": ```sh runnable) in the README's order,
// against one fresh server, as a newcomer would paste them into one
// terminal in the root of a clone:
//
//   - sh blocks run in bash with -e and -o pipefail, so each command must
//     succeed; the variables a block exports reach the blocks after it;
//   - python blocks run with a python3 that has boto3;
//   - go blocks are whole programs, run with `go run` in a module that
//     requires what openkvs's go.mod does.
//
// The examples address the server as 127.0.0.1:4567, the default of
// `openkvs serve`; the test's server listens on a free port, so that
// address is rewritten to it, and OPENKVS_ENDPOINT points the openkvs
// client commands, whose default it is, there. Each block runs in a
// temporary directory with testdata/ linked in, with this build's openkvs
// first on PATH and no AWS configuration but what the blocks set. A block
// that fails, or runs over 2 minutes, fails the test with its line, its
// code and its output, and ends it: the blocks after it may depend on it.
func TestReadme(t *testing.T) {
	requireTool(t, "aws", "apt-get install -y awscli")
	requireTool(t, "curl", "apt-get install -y curl")
	python := requirePython(t, "boto3", "apt-get install -y python3-boto3")
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	var runnable []readmeBlock
	for _, b := range readmeBlocks(t, filepath.Join(repo, "README.md")) {
		if !b.runnable {
			continue
		}
		if !slices.Contains([]string{"sh", "python", "go"}, b.lang) {
			t.Fatalf("README.md:%d: a runnable block in %q; the test runs sh, python and go", b.line, b.lang)
		}
		runnable = append(runnable, b)
	}
	if len(runnable) == 0 {
		t.Fatal("README.md has no runnable block: the marker is ```sh runnable")
	}

	srv := startServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	work := t.TempDir()
	if err := os.Symlink(filepath.Join(repo, "testdata"), filepath.Join(work, "testdata")); err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	state := filepath.Join(scratch, "state.sh") // the variables exported so far
	if err := os.WriteFile(state, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	goModule := readmeGoModule(t, repo)
	env := []string{
		"PATH=" + filepath.Dir(binary) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"OPENKVS_ENDPOINT=" + srv.URL,
		"AWS_CONFIG_FILE=" + filepath.Join(scratch, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(scratch, "aws-credentials"),
	}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "OPENKVS_") && !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}

	for i, b := range runnable {
		code := strings.ReplaceAll(b.code, "127.0.0.1:4567", addr)
		var run string
		switch b.lang {
		case "sh":
			run = code
		case "python":
			run = fmt.Sprintf("%q - <<'README_PYTHON'\n%sREADME_PYTHON\n", python, code)
		case "go":
			main := filepath.Join(goModule, "main.go")
			if err := os.WriteFile(main, []byte(code), 0o644); err != nil {
				t.Fatal(err)
			}
			run = fmt.Sprintf("(cd %q && go run .)\n", goModule)
		}
		script := filepath.Join(scratch, fmt.Sprintf("block%d.sh", i))
		body := fmt.Sprintf("set -eo pipefail\n. %q\n%s\nexport -p > %q\n", state, run, state)
		if err := os.WriteFile(script, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(c, "bash", "--noprofile", "--norc", script)
		cmd.Dir, cmd.Env = work, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		start := time.Now()
		err := cmd.Run()
		cancel()
		if err != nil {
			t.Fatalf("README.md:%d: the %s block failed after %v: %v\n--- block (127.0.0.1:4567 is %s here) ---\n%s--- output ---\n%s",
				b.line, b.lang, time.Since(start).Round(time.Millisecond), err, addr, b.code, out.String())
		}
		t.Logf("README.md:%d: %s block ran in %v", b.line, b.lang, time.Since(start).Round(time.Millisecond))
	}
}

// readmeGoModule makes a module for the README's Go programs: openkvs's
// go.mod and go.sum under another module path, so that a program builds
// with the versions openkvs is tested with, from the module cache.
func readmeGoModule(t *testing.T, repo string) string {
	t.Helper()
	dir := t.TempDir()
	mod, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	const path = "module github.com/openkvs/openkvs\n"
	if !bytes.HasPrefix(mod, []byte(path)) {
		t.Fatalf("go.mod does not start with %q", path)
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), append([]byte("module readme\n"), mod[len(path):]...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}
