package diff

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/pkg/stats"
)

// The merge method: every table is scanned once (the master and each
// slave at the same time, TotalSegments segments each), every item is reduced
// to its exact key and a digest of its compared attributes (digest.go),
// and the records are kept by key-hash partition in a store that spills
// to disk past the memory limit (spill.go). Once the scans are done the
// partitions are compared one at a time: a key only in the master is a
// missing candidate, only in a slave an extra candidate, in both with
// different digests a differing candidate. The scans are eventually
// consistent and not simultaneous, so each candidate is read again from
// both sides with consistent reads, compared with Compare, and only what
// is confirmed is reported or repaired (with the lookup's repair code).

func (d *Differ) runMerge(ctx context.Context) error {
	limit := d.cfg.MemoryLimit
	if limit <= 0 {
		limit = DefaultMemoryLimit
	}
	var total tableSize
	for _, t := range d.sizes {
		total.items += t.items
	}
	names := []string{d.cfg.Master.Label}
	for _, s := range d.slaves {
		names = append(names, s.Label)
	}
	budget := budgetOf(limit)
	parts := partitions(total, len(names), budget)

	var (
		dir string
		cp  *checkpointFile
		ck  *checkpointer
	)
	if d.cfg.StateDir != "" {
		dir = filepath.Join(d.cfg.StateDir, "diff-"+d.resumeID())
		var err error
		if cp, err = d.openResume(dir, names); err != nil {
			return err
		}
		if cp != nil {
			parts = cp.Parts
		}
	}
	mkdir := func() (string, error) {
		if dir != "" {
			return dir, nil
		}
		var err error
		dir, err = os.MkdirTemp("", "ddbsync-diff-spill-")
		if err != nil {
			return "", fmt.Errorf("spill directory: %w", err)
		}
		return dir, nil
	}
	st := newStore(len(names), d.cfg.TotalSegments, parts, budget.records, mkdir)
	st.log = d.log
	st.pageLimit = d.pageLimit(budget, len(names))
	if d.cfg.StateDir != "" {
		st.dir = dir
		ck = &checkpointer{st: st, path: filepath.Join(dir, "checkpoint.json"), id: d.resumeID(), names: names}
		if cp != nil {
			if err := d.restore(st, cp); err != nil {
				return err
			}
			done := 0
			for _, sd := range st.sides {
				for _, g := range sd.segs {
					if g.done {
						done++
					}
				}
			}
			for _, s := range d.slaves {
				s.st.Scanned.Add(st.sides[0].items)
				s.failed.Add(st.sides[0].failed)
				s.filtered.Add(st.sides[0].filtered)
			}
			d.log.Info(fmt.Sprintf("merge: resuming from %s: %d of %d scan segments done, %d master items already scanned",
				dir, done, len(names)*d.cfg.TotalSegments, st.sides[0].items))
		}
	}
	err := d.mergeScan(ctx, st, ck)
	if err == nil && ck != nil {
		err = ck.page()
	}
	if err == nil {
		d.log.Debug(fmt.Sprintf("merge: scans done; comparing %d partitions (%d spill rounds, %d bytes in spill files)", st.parts, st.spills.Load(), st.spilled.Load()))
		err = d.mergeCompare(ctx, st)
	}
	if dir != "" && (err == nil || d.cfg.StateDir == "") {
		// Finished (or not resumable): the state is of no further use.
		if rerr := os.RemoveAll(dir); rerr != nil && err == nil {
			d.log.Warn(fmt.Sprintf("merge: could not remove %s: %v", dir, rerr))
		}
	} else if err != nil && dir != "" {
		d.log.Info(fmt.Sprintf("merge: stopped; run the same diff again with the same state directory (%s) to continue from the state in %s", d.cfg.Names.Of("StateDir"), dir))
	}
	return err
}

// mergeScan scans the master and every slave at once into the store.
func (d *Differ) mergeScan(ctx context.Context, st *store, ck *checkpointer) error {
	g, gctx := errgroup.WithContext(ctx)
	tables := append([]Table{d.cfg.Master}, make([]Table, len(d.slaves))...)
	for i, s := range d.slaves {
		tables[i+1] = s.Table
	}
	for i, t := range tables {
		for seg := range d.cfg.TotalSegments {
			if st.sides[i].segs[seg].done {
				continue
			}
			g.Go(func() error { return d.mergeScanSegment(gctx, st, st.sides[i], t, seg, ck) })
		}
	}
	return g.Wait()
}

// mergeScanSegment scans one segment of one table into the store, from
// its position (the beginning, or where a resumed run stopped), writing
// a checkpoint after every page when ck is set.
func (d *Differ) mergeScanSegment(ctx context.Context, st *store, sd *side, t Table, seg int, ck *checkpointer) error {
	start := sd.segs[seg].start
	sc := d.sideCounters(sd)
	g := digester{ignore: d.ignore}
	var b batch
	for {
		in := &dynamodb.ScanInput{
			TableName:              aws.String(t.Name),
			ReturnConsumedCapacity: types.ReturnConsumedCapacityTotal,
			ExclusiveStartKey:      start,
		}
		if d.cfg.TotalSegments > 1 {
			in.Segment = aws.Int32(int32(seg))
			in.TotalSegments = aws.Int32(int32(d.cfg.TotalSegments))
		}
		if st.pageLimit > 0 {
			in.Limit = aws.Int32(st.pageLimit)
		}
		var out *dynamodb.ScanOutput
		var tally stats.Entry
		err := d.retry(ctx, &tally, t.Name, "Scan", func() error {
			var err error
			out, err = t.Client.Scan(ctx, in, countRetries(&tally))
			return err
		})
		if n, th := tally.Retries.Load(), tally.Throttles.Load(); n+th > 0 {
			sc.retried(n, th)
		}
		if err != nil {
			return err
		}
		if out.ConsumedCapacity != nil {
			sc.charge(aws.ToFloat64(out.ConsumedCapacity.CapacityUnits))
		}
		b.reset()
		failed, filtered := d.addItems(st, sd, &b, &g, out.Items)
		lek, n := out.LastEvaluatedKey, int64(len(out.Items))
		if err := st.add(sd, &b, func() {
			sd.segs[seg] = segPos{start: lek, done: len(lek) == 0}
			sd.items += n
			sd.failed += failed
			sd.filtered += filtered
		}); err != nil {
			return err
		}
		sc.scanned(n, failed, filtered)
		if ck != nil {
			if err := ck.page(); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		start = out.LastEvaluatedKey
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// sideCounters are where a scan of one side counts: the master's reads,
// retries and scanned items go to every slave's counters (each compares
// with the one master scan), a slave's to its own.
type sideCounters struct {
	charge  func(rcu float64)
	retried func(n, throttled int64)
	scanned func(n, failed, filtered int64)
}

func (d *Differ) sideCounters(sd *side) sideCounters {
	if sd.n > 0 {
		s := d.slaves[sd.n-1]
		return sideCounters{
			charge: s.addRCU,
			retried: func(n, th int64) {
				s.st.Retries.Add(n)
				s.st.Throttles.Add(th)
			},
			scanned: func(int64, int64, int64) {},
		}
	}
	return sideCounters{
		charge: func(u float64) {
			for _, s := range d.slaves {
				s.st.ConsumedRCU.Add(u / float64(len(d.slaves)))
			}
		},
		retried: func(n, th int64) {
			for _, s := range d.slaves {
				s.st.Retries.Add(n)
				s.st.Throttles.Add(th)
			}
		},
		scanned: func(n, failed, filtered int64) {
			for _, s := range d.slaves {
				s.st.Scanned.Add(n)
				s.failed.Add(failed)
				s.filtered.Add(filtered)
			}
		},
	}
}

// addItems adds a page's items to the batch of records: a slave's as read,
// the master's as the migration writes them (transform.go), counting the
// master items the program fails on or filters out.
func (d *Differ) addItems(st *store, sd *side, b *batch, g *digester, items []map[string]types.AttributeValue) (failed, filtered int64) {
	for _, it := range items {
		if sd.n > 0 {
			key := d.out.KeyString(it)
			b.add(st.partitionOf(key), key, g.sum(it))
			continue
		}
		o, keep, err := d.project(it)
		switch {
		case err != nil:
			failed++
			d.logFailed(d.slaves, d.keys.Key(it), err)
		case !keep:
			filtered++
		default:
			key, outKS := d.recKey(o, it)
			b.add(st.partitionOf(outKS), key, g.sum(o))
		}
	}
	return failed, filtered
}

// mcand is a candidate difference found by comparing the scans.
type mcand struct {
	key        string // a master record key (recKey), or a slave's KeyString
	kind       string
	fromMaster bool // the master scan saw the item (counts in Scanned)
}

// mergeCompare compares the partitions one at a time and confirms the
// candidates, gathered over partitions so that the confirming reads go in
// full batches.
func (d *Differ) mergeCompare(ctx context.Context, st *store) error {
	extras := d.cfg.ScanForExtra || d.cfg.DeleteExtra
	pending := make([][]mcand, len(d.slaves))
	round := d.cfg.BatchReadLimit * d.cfg.Checkers
	for p := range st.parts {
		if err := ctx.Err(); err != nil {
			return err
		}
		master, err := st.load(st.sides[0], p)
		if err != nil {
			return err
		}
		for i, s := range d.slaves {
			recs, err := st.load(st.sides[i+1], p)
			if err != nil {
				return err
			}
			pending[i] = append(pending[i], d.mergeJoin(s, master, recs, extras)...)
			if len(pending[i]) >= round {
				if err := d.confirmCandidates(ctx, s, pending[i]); err != nil {
					return err
				}
				pending[i] = nil
			}
		}
		st.release(p)
	}
	for i, s := range d.slaves {
		if err := d.confirmCandidates(ctx, s, pending[i]); err != nil {
			return err
		}
	}
	return nil
}

// mergeJoin walks two key-sorted record lists and returns the
// candidates, counting what matches. Master records are sorted by output
// key first (recKey); several master items mapping to one output key (a
// transform that is not one-to-one on keys) are compared as one, the
// others counted as failed: the slave can hold only one of them.
func (d *Differ) mergeJoin(s *slave, master, slave []rec, extras bool) []mcand {
	var cands []mcand
	debug := d.cfg.Verbose && s.log.Core().Enabled(zap.DebugLevel)
	i, j := 0, 0
	for i < len(master) || j < len(slave) {
		var mk string
		end := i
		if i < len(master) {
			mk = d.outPart(master[i].key)
			for end = i + 1; end < len(master) && d.outPart(master[end].key) == mk; end++ {
			}
		}
		switch {
		case j == len(slave) || (i < len(master) && mk < slave[j].key):
			cands = append(cands, mcand{key: master[i].key, kind: KindMissing, fromMaster: true})
			d.collisions(s, master[i:end], 0)
			i = end
		case i == len(master) || slave[j].key < mk:
			if extras {
				cands = append(cands, mcand{key: slave[j].key, kind: KindExtra})
			}
			j++
		default:
			same := i
			for same < end && master[same].dig != slave[j].dig {
				same++
			}
			if same < end {
				s.st.Matching.Add(1)
				if debug {
					if k, _, err := d.decodeRec(master[i].key); err == nil {
						s.log.Debug("= " + d.out.FormatKey(k))
					}
				}
			} else {
				cands = append(cands, mcand{key: master[i].key, kind: KindDiffering, fromMaster: true})
				same = i
			}
			d.collisions(s, master[i:end], same-i)
			i = end
			j++
		}
	}
	return cands
}

// collisions counts and logs, as failed, the master records of one
// output key other than the one compared (group[kept]), and writes a
// report line for each of them.
func (d *Differ) collisions(s *slave, group []rec, kept int) {
	if len(group) < 2 {
		return
	}
	var ins []string
	var failed []item
	var out item
	for i, r := range group {
		o, in, err := d.decodeRec(r.key)
		if err != nil {
			// Not one of the records this diff wrote: counted failed
			// with the others, and said.
			s.log.Error(fmt.Sprintf("internal error: a spilled record of the master cannot be decoded (%v); it is counted as failed", err))
			continue
		}
		out = o
		ins = append(ins, d.keys.FormatKey(in))
		if i != kept {
			failed = append(failed, in)
		}
	}
	s.failed.Add(int64(len(group) - 1))
	reason := fmt.Sprintf("%d master items map to the output key %s (%s); the slave can hold only one of them",
		len(group), d.out.FormatKey(out), strings.Join(ins, ", "))
	s.log.Warn(fmt.Sprintf("%s %s: failed: %s", sigils[KindFailed], d.out.FormatKey(out), reason))
	for _, in := range failed {
		d.reportFailed(s, in, reason)
	}
}

// confirmCandidates reads every candidate again from both sides with
// consistent reads (batched, several batches at once), reports or
// repairs what is confirmed, and counts the rest as resolved.
func (d *Differ) confirmCandidates(ctx context.Context, s *slave, cands []mcand) error {
	if len(cands) == 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(d.cfg.Checkers)
	for start := 0; start < len(cands); start += d.cfg.BatchReadLimit {
		batch := cands[start:min(start+d.cfg.BatchReadLimit, len(cands))]
		g.Go(func() error { return d.confirmBatch(gctx, s, batch) })
	}
	return g.Wait()
}

func (d *Differ) confirmBatch(ctx context.Context, s *slave, cands []mcand) error {
	outKeys := make([]item, len(cands))
	inKeys := make([]item, len(cands))
	for i, c := range cands {
		var err error
		if c.fromMaster {
			outKeys[i], inKeys[i], err = d.decodeRec(c.key)
		} else {
			outKeys[i], err = d.decodeKey(c.key)
		}
		if err != nil {
			return err
		}
	}
	now, err := d.reread(ctx, s, outKeys, inKeys)
	if err != nil {
		return err
	}
	extras := d.cfg.ScanForExtra || d.cfg.DeleteExtra
	rp := d.newRepairs()
	for i, c := range cands {
		key, r := outKeys[i], now[i]
		mok, sok := r.master != nil, r.slave != nil
		if r.failed != nil && !mok {
			// The master item the scan transformed fails the program now
			// (changed during the scans): neither compared nor deleted.
			s.failed.Add(1)
			d.logFailed([]*slave{s}, inKeys[i], r.failed)
			continue
		}
		if !mok && sok && r.namedFailed {
			s.log.Info(fmt.Sprintf("%s: not reported as extra: the program fails on the master item it was copied from", d.out.FormatKey(key)))
			continue
		}
		var cur candidate
		switch {
		case mok && !sok:
			cur = candidate{kind: KindMissing, key: key, inKey: r.inKey, master: r.master}
		case !mok && sok && extras:
			cur = candidate{kind: KindExtra, key: key, slave: r.slave}
		case mok && sok:
			if attrs := Compare(r.master, r.slave, d.ignore); attrs != nil {
				cur = candidate{kind: KindDiffering, key: key, inKey: r.inKey, master: r.master, slave: r.slave, attrs: attrs}
			}
		}
		if cur.kind == "" {
			// Equal now, gone from both, or (without extra items
			// reported) only left in the slave: changed during the scans.
			s.resolved.Add(1)
			if c.fromMaster && (mok || !sok) {
				s.st.Matching.Add(1)
			}
			s.log.Debug(fmt.Sprintf("%s: %s candidate resolved on a consistent read", d.out.FormatKey(key), c.kind))
			continue
		}
		if !d.repairs(cur.kind) {
			d.found(s, cur, ActionNone, "")
			continue
		}
		if err := rp.start(ctx, s, cur); err != nil {
			return err
		}
	}
	return rp.wait()
}

// decodeKey turns a slave's KeyString back into the key item.
func (d *Differ) decodeKey(ks string) (item, error) {
	k, n, err := decodeKeyWith(d.out, ks)
	if err == nil && n != len(ks) {
		err = badRecord(ks)
	}
	return k, err
}
