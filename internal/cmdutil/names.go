package cmdutil

import "github.com/ddbsync/ddbsync/pkg/job"

// OptionNames are the flags (and plan keys) of the copying engines'
// options, for the engines' messages (job.Common.Names): a message says
// "--skip-failed-items" where a library user reads "SkipFailedItems".
var OptionNames = job.Names{
	"CreateOutputTable": "--create-output-table",
	"DeleteExtra":       "--delete-extra",
	"Leases":            "--checkpoint-table",
	"MaxWCU":            "--max-wcu",
	"SkipExpired":       "--skip-expired",
	"SkipFailedItems":   "--skip-failed-items",
	"TotalSegments":     "--backfill-total-segments, or total_segments in the plan",
	"UntilCaughtUp":     "--until-caught-up",
}
