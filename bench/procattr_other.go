//go:build !linux

package bench

import "os/exec"

// setParentDeath does nothing where the kernel cannot tie a child's life to
// its parent's; the bench stops its children itself on a normal exit.
func setParentDeath(*exec.Cmd) {}
