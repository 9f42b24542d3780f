package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// process is a child the bench started: an `openkvs serve` or the baseline
// server. Both log a JSON "listening" line that carries their URL.
type process struct {
	cmd  *exec.Cmd
	URL  string // http://127.0.0.1:port
	Echo string // the baseline server's TCP echo address
	logs *logTail
	done chan error
}

// logTail keeps the last lines a child logged, for error reports.
type logTail struct {
	mu    sync.Mutex
	lines []string
}

func (l *logTail) add(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) == 20 {
		l.lines = l.lines[1:]
	}
	l.lines = append(l.lines, s)
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// startProcess runs exe with args and waits for its "listening" line. The
// child is killed if the bench dies (see setParentDeath), and stopped by
// stop.
func startProcess(ctx context.Context, exe string, args ...string) (*process, error) {
	cmd := exec.Command(exe, args...)
	setParentDeath(cmd)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	p := &process{cmd: cmd, logs: &logTail{}, done: make(chan error, 1)}
	type listening struct{ URL, Echo string }
	ready := make(chan listening, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			var rec struct {
				Msg, URL, Echo string
				Level          string
			}
			if json.Unmarshal([]byte(line), &rec) != nil {
				p.logs.add(line)
				continue
			}
			if rec.Msg == "listening" {
				ready <- listening{rec.URL, rec.Echo}
			}
			// Request lines are many and say little; keep what may explain
			// a failure.
			if rec.Level != "INFO" || rec.Msg == "listening" {
				p.logs.add(line)
			}
		}
		io.Copy(io.Discard, stderr)
		p.done <- cmd.Wait()
	}()
	select {
	case l := <-ready:
		p.URL, p.Echo = l.URL, l.Echo
		return p, nil
	case err := <-p.done:
		return nil, fmt.Errorf("%s exited before listening (%v):\n%s", args[0], err, p.logs)
	case <-ctx.Done():
		cmd.Process.Kill()
		<-p.done
		return nil, ctx.Err()
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-p.done
		return nil, fmt.Errorf("%s did not start listening within 30s:\n%s", args[0], p.logs)
	}
}

// Pid is the child's process id.
func (p *process) Pid() int { return p.cmd.Process.Pid }

// stop ends the child with SIGTERM, or SIGKILL if it lingers.
func (p *process) stop() error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return fmt.Errorf("child exited with %v:\n%s", err, p.logs)
		}
		return err
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("child did not stop within 15s of SIGTERM; killed")
	}
}

// kill ends the child with SIGKILL and waits for it.
func (p *process) kill() {
	p.cmd.Process.Kill()
	<-p.done
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times: 100 on every
// Linux architecture Go supports (the kernel fixes it for user space).
const clockTicks = 100

// CPUSeconds is the CPU time (user + system, all threads) a process has
// used, from /proc/<pid>/stat fields 14 and 15 (proc(5)).
func CPUSeconds(pid int) (float64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces: count from after it.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("read CPU time: short /proc/%d/stat", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64)
	stime, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("read CPU time: %w", err)
	}
	return float64(utime+stime) / clockTicks, nil
}

// rssBytes is a process's resident memory, VmRSS in /proc/<pid>/status.
func rssBytes(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("read RSS: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("read RSS: no VmRSS line")
}

// selfCPUSeconds is the CPU time the bench process itself has used: the
// clients compete with the server for the same cores.
func selfCPUSeconds() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// sampleRSS samples pid's RSS every interval until the returned function is
// called; that returns the largest sample (0 if none could be read).
func sampleRSS(pid int, interval time.Duration) (end func() int64) {
	stop := make(chan struct{})
	peak := make(chan int64, 1)
	go func() {
		var top int64
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if v, err := rssBytes(pid); err == nil && v > top {
				top = v
			}
			select {
			case <-stop:
				peak <- top
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(stop)
		return <-peak
	}
}
