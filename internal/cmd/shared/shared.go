// Package shared holds what several commands build alike: sync makes its
// copy as the backfill command does and its stream as the stream command
// does, and estimates and summarises them the same way, so the pieces live
// here rather than in one command that the others would import (cli/cli's
// pkg/cmd/pr/shared is the model).
package shared
