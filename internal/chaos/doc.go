// Package chaos holds the randomized workflow test of ddbsync: a writer
// changes the input table for the whole test (puts, updates, deletes,
// delete and reinsert, bursts on one key) while a schedule generated from
// a seed runs the real binary against DynamoDB Local — backfill, sync,
// stream, with and without a checkpoint table, killed (SIGKILL), stopped
// (SIGTERM), suspended past their lease (SIGSTOP, SIGCONT) and restarted,
// several workers at once. At the end the writer stops, a last sync
// catches up, and the output must equal the input item for item.
//
// A failure prints the seed and the schedule as a list of steps; the same
// seed gives the same schedule (the timing of the processes still varies):
//
//	make chaos SEED=17       # replay one seed
//	make chaos SEEDS=200     # seeds 1..200
//	make chaos SEEDS=45m     # as many seeds as fit in 45 minutes
//
// Knobs (environment variables, read by TestChaos):
//
//	DDBSYNC_CHAOS_SEED        run this one seed
//	DDBSYNC_CHAOS_SEEDS       a number of seeds, or a duration
//	DDBSYNC_CHAOS_FIRST_SEED  first seed of a long run (default 1)
//	DDBSYNC_CHAOS_KEEP_LOGS   keep every run's logs, not only a failed seed's
//	DDBSYNC_CHAOS_BIN         test this ddbsync binary instead of building one
//
// Without them (as in make test) a few fixed seeds run: the short form.
// See docs/testing.md.
package chaos
