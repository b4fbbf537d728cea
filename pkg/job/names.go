package job

// Names says how the caller spells the engines' options, for the messages
// that tell a user what to change: a command line maps "SkipFailedItems"
// to "--skip-failed-items". An option it does not name is called by its
// Go name (the Config field). The keys are the Config field names of the
// engines (backfill, stream, syncer, diff).
type Names map[string]string

// Of returns how the caller spells option.
func (n Names) Of(option string) string {
	if s, ok := n[option]; ok {
		return s
	}
	return option
}
