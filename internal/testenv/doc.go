// Package testenv gives tests the outside servers the scale-out backends
// run on (PostgreSQL here; an S3 server beside it), started once per test
// process and stopped when it ends, or taken from the environment. A test
// whose server cannot be had fails under CI=true and is skipped elsewhere,
// naming what to install.
//
// A package using these helpers runs its tests through Main from TestMain,
// so that a server it started is stopped before the process exits.
package testenv

import (
	"os"
	"sync"
	"sync/atomic"
	"testing"
)

var (
	mainRan  atomic.Bool
	atExitMu sync.Mutex
	atExit   []func()
)

// Main runs the tests of m, then stops every server this process started,
// and exits with the tests' status. Call it from TestMain.
func Main(m *testing.M) {
	mainRan.Store(true)
	code := m.Run()
	atExitMu.Lock()
	fns := atExit
	atExit = nil
	atExitMu.Unlock()
	for i := len(fns) - 1; i >= 0; i-- {
		fns[i]()
	}
	os.Exit(code)
}

// requireMain fails the test unless it runs under Main: a server started
// for it would otherwise outlive the test process.
func requireMain(t testing.TB) {
	t.Helper()
	if !mainRan.Load() {
		t.Fatal("testenv starts servers only for tests run by testenv.Main: call it from TestMain")
	}
}

// onExit has Main run fn once the tests are done.
func onExit(fn func()) {
	atExitMu.Lock()
	atExit = append(atExit, fn)
	atExitMu.Unlock()
}

// missing fails the test under CI=true, where every tool must be
// installed, and skips it elsewhere, with why.
func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}
