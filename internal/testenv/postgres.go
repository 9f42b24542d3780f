package testenv

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresEnv names the variable holding an admin DSN of a PostgreSQL
// server for the tests to create their databases on, instead of starting
// one of their own.
const PostgresEnv = "OPENKVS_TEST_POSTGRES"

// postgresInstall says what to install when no server can be had.
const postgresInstall = "needs PostgreSQL: apt-get install postgresql (or set " + PostgresEnv + " to an admin DSN)"

var pgServer struct {
	once  sync.Once
	admin string // DSN of the server's postgres database
	err   error
}

var pgDatabases atomic.Int64

// Postgres creates an empty database for the test and returns its DSN; the
// database is dropped when the test ends. Each call makes a new database,
// so a test opens the same one again by reusing the DSN.
//
// The server is the one $OPENKVS_TEST_POSTGRES names, else one started
// from Debian's PostgreSQL binaries (/usr/lib/postgresql/*/bin) once per
// test process, with fsync off: the tests kill openkvs nodes, never the
// database.
func Postgres(t testing.TB) string {
	t.Helper()
	admin := postgresAdmin(t)
	name := databaseName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := adminExec(ctx, admin, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE: a connection a failed test left open must not keep it.
		if err := adminExec(ctx, admin, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database: %v", err)
		}
	})
	dsn, err := withDatabase(admin, name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

func postgresAdmin(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(PostgresEnv); dsn != "" {
		return dsn
	}
	bin := postgresBin()
	if bin == "" {
		missing(t, postgresInstall)
	}
	requireMain(t)
	pgServer.once.Do(func() { pgServer.admin, pgServer.err = startPostgres(bin) })
	if pgServer.err != nil {
		t.Fatal(pgServer.err)
	}
	return pgServer.admin
}

// postgresBin returns the bin directory of the newest PostgreSQL Debian
// installed, or "".
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var found []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "pg_ctl")); err == nil {
			found = append(found, d)
		}
	}
	if len(found) == 0 {
		return ""
	}
	sort.Slice(found, func(i, j int) bool { return majorVersion(found[i]) < majorVersion(found[j]) })
	return found[len(found)-1]
}

func majorVersion(bin string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(bin)))
	return n
}

// postgresKeeper runs the server's whole life in a process of its own, so
// that it ends with this one however this one ends: it reads commands
// ("init", "start PORT") from a pipe only this process holds open and
// answers each with its exit status; when the pipe closes (this process
// exited, crashed or was killed) it stops the server and removes its
// directory. Being sequential, it never stops a server before a start in
// progress is done.
const postgresKeeper = `
trap '' PIPE  # answering a process that is gone must not end the keeper
run() { if [ "$ROOT" = 1 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
while read -r cmd port; do
	case $cmd in
	init) run "$BIN/initdb" -D "$DIR/data" -U postgres -A trust --no-sync -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1; echo $? ;;
	start) run "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/postgres.log" -w -t 60 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $DIR -c fsync=off -c max_connections=200" start >"$DIR/pg_ctl.log" 2>&1; echo $? ;;
	esac
done
run "$BIN/pg_ctl" -D "$DIR/data" -m immediate -w stop >/dev/null 2>&1
rm -rf "$DIR"
`

// startPostgres initializes a cluster in a temporary directory and starts
// it on a free loopback port, with its socket in that directory (the
// packaged server's port and /var/run/postgresql stay untouched), through
// a postgresKeeper.
func startPostgres(bin string) (string, error) {
	dir, err := os.MkdirTemp("", "openkvs-pg.")
	if err != nil {
		return "", err
	}
	root := "0"
	// initdb refuses to run as root.
	if os.Geteuid() == 0 {
		root = "1"
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("start PostgreSQL as root: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
	}
	keeper := exec.Command("sh", "-c", postgresKeeper)
	keeper.Env = append(os.Environ(), "BIN="+bin, "DIR="+dir, "ROOT="+root)
	// Its own process group: a ^C to the tests must not stop it first.
	keeper.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	commands, err := keeper.StdinPipe()
	if err != nil {
		return "", err
	}
	out, err := keeper.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := keeper.Start(); err != nil {
		return "", fmt.Errorf("start PostgreSQL: %w", err)
	}
	onExit(func() {
		commands.Close()
		keeper.Wait()
	})
	answers := bufio.NewScanner(out)
	do := func(command, log string) error {
		fmt.Fprintln(commands, command)
		if !answers.Scan() {
			return fmt.Errorf("%s: the PostgreSQL keeper process ended", command)
		}
		if status := answers.Text(); status != "0" {
			text, _ := os.ReadFile(filepath.Join(dir, log))
			return fmt.Errorf("%s: exit status %s\n%s", command, status, text)
		}
		return nil
	}
	if err := do("init", "initdb.log"); err != nil {
		return "", err
	}
	// Another process may take the free port before the server binds it:
	// try a few.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return "", err
		}
		err = do(fmt.Sprintf("start %d", port), "postgres.log")
		if err == nil {
			return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port), nil
		}
		if attempt == 2 {
			return "", err
		}
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func adminExec(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// databaseName makes a database name from the test's name, unique across
// the test processes that may share a server. PostgreSQL keeps 63 bytes.
func databaseName(test string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(test) {
		if b.Len() == 36 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return fmt.Sprintf("t_%s_%d_%d", b.String(), os.Getpid(), pgDatabases.Add(1))
}

// withDatabase returns admin with its database replaced by name, in URL or
// keyword=value form.
func withDatabase(admin, name string) (string, error) {
	if strings.HasPrefix(admin, "postgres://") || strings.HasPrefix(admin, "postgresql://") {
		u, err := url.Parse(admin)
		if err != nil {
			return "", fmt.Errorf("%s: %w", PostgresEnv, err)
		}
		u.Path = "/" + name
		return u.String(), nil
	}
	return admin + " dbname=" + name, nil
}
