// Package e2e holds process-level tests of ddbsync: the binary is built
// once, several worker processes run against DynamoDB Local (through
// internal/ddbtest) and share one checkpoint table, and workers are
// killed with SIGKILL or stopped with SIGTERM mid-run.
//
// Knobs (environment variables), for running the heavy cases by hand:
//
//	DDBSYNC_E2E_ITEMS       items of the scale-out backfill (default 20000;
//	                        the full size is 100000)
//	DDBSYNC_E2E_DIFF_ITEMS  master items of the killed merge diff (default 3000)
package e2e
