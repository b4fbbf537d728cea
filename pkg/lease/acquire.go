package lease

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"github.com/ddbsync/ddbsync/pkg/plan"
	"github.com/ddbsync/ddbsync/pkg/state"
)

// Register makes sure scope has one lease per unit, creating the missing
// ones (unowned, no checkpoint), and that the leases already there were
// made by the same plan: fingerprint describes what the units depend on,
// e.g. "input=us-east-1:orders output=eu-west-1:orders total_segments=16"
// for a backfill, or the stream ARN for a stream. A different stored
// fingerprint is a *plan.Error naming both. Every worker calls Register
// with the same arguments before its first Acquire. Register never
// removes a lease; stream workers use RegisterLineage, which also deletes
// finished leases that are done with.
func (m *Manager) Register(ctx context.Context, scope, fingerprint string, units []Unit) error {
	return m.register(ctx, scope, fingerprint, units, false)
}

// RegisterLineage is Register for a stream's shards, units being every
// shard the stream lists now (with its parents). It also deletes the
// leases of finished shards that are done with, so that the lease table
// does not grow with every shard the stream ever had: a finished lease is
// deleted once its shard is no longer listed (trimmed, about 24 h after
// it closed) and it has at least one child lease, every one of which has
// a checkpoint or is finished (the KCL deletes a finished shard's lease
// once its children have started). Before deleting, the shard is recorded
// in each child's lease (retired_parents): a unit recorded there is never
// registered again, even if an eventually consistent listing shows it
// once more, and a child whose parent lease is absent is claimable, as
// for a parent trimmed before it was ever registered.
func (m *Manager) RegisterLineage(ctx context.Context, scope, fingerprint string, units []Unit) error {
	return m.register(ctx, scope, fingerprint, units, true)
}

func (m *Manager) register(ctx context.Context, scope, fingerprint string, units []Unit, prune bool) error {
	pk, kind, err := splitScope(scope)
	if err != nil {
		return err
	}
	if err := m.checkFingerprint(ctx, scope, pk, kind, fingerprint); err != nil {
		return err
	}
	existing, err := m.List(ctx, scope)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, in := range existing {
		have[in.Unit] = true
		for _, p := range in.RetiredParents {
			have[p] = true // deleted on purpose: never again
		}
	}
	if prune {
		retired, err := m.pruneFinished(ctx, scope, pk, existing, units)
		if err != nil {
			return err
		}
		for _, u := range retired {
			have[u] = true
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	created := 0
	for _, u := range units {
		if u.ID == "" {
			return fmt.Errorf("lease scope %s: a unit has an empty ID", scope)
		}
		if have[u.ID] {
			continue
		}
		have[u.ID] = true
		created++
		item := key(pk, leasePrefix+kind+"/"+u.ID)
		item[attrUnit] = s(u.ID)
		item[attrCounter] = n(0)
		item[attrEpoch] = n(0)
		item[attrFinished] = &types.AttributeValueMemberBOOL{Value: false}
		item[attrUpdatedAt] = s(now())
		if len(u.Parents) > 0 {
			var l []types.AttributeValue
			for _, p := range u.Parents {
				l = append(l, s(p))
			}
			item[attrParents] = &types.AttributeValueMemberL{Value: l}
		}
		g.Go(func() error {
			_, err := m.client.PutItem(gctx, &dynamodb.PutItemInput{
				TableName:                aws.String(m.table),
				Item:                     item,
				ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
				ExpressionAttributeNames: map[string]string{"#pk": state.AttrPK},
			})
			if err != nil && !isConditionFailed(err) { // another worker created it first
				return m.fail("PutItem lease "+scope+" "+u.ID, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if created > 0 {
		m.log.Debug(fmt.Sprintf("registered %d new leases for %s", created, scope))
	}
	return nil
}

// pruneFinished deletes the finished leases RegisterLineage describes
// and returns their units.
func (m *Manager) pruneFinished(ctx context.Context, scope, pk string, existing []Info, units []Unit) ([]string, error) {
	listed := make(map[string]bool, len(units))
	for _, u := range units {
		listed[u.ID] = true
	}
	children := map[string][]Info{}
	for _, in := range existing {
		for _, p := range in.Parents {
			children[p] = append(children[p], in)
		}
	}
	var retired []string
	for _, in := range existing {
		kids := children[in.Unit]
		if !in.Finished || listed[in.Unit] || len(kids) == 0 {
			continue
		}
		started := true
		for _, k := range kids {
			if !k.Finished && len(k.Checkpoint) == 0 {
				started = false
			}
		}
		if !started {
			continue
		}
		// Record the parent in every child first: should the delete
		// below be lost, the lease is deleted again next time; should
		// this worker stop in between, nothing is lost either.
		for _, k := range kids {
			_, err := m.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName:                 aws.String(m.table),
				Key:                       key(pk, k.sk),
				UpdateExpression:          aws.String("ADD #retired :p"),
				ConditionExpression:       aws.String("attribute_exists(#pk)"),
				ExpressionAttributeNames:  map[string]string{"#retired": attrRetired, "#pk": state.AttrPK},
				ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberSS{Value: []string{in.Unit}}},
			})
			if err != nil && !isConditionFailed(err) { // a child deleted meanwhile is finished
				return retired, m.fail("record the retired parent in lease "+scope+" "+k.Unit, err)
			}
		}
		_, err := m.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 aws.String(m.table),
			Key:                       key(pk, in.sk),
			ConditionExpression:       aws.String("#finished = :true"),
			ExpressionAttributeNames:  map[string]string{"#finished": attrFinished},
			ExpressionAttributeValues: map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}},
		})
		if err != nil && !isConditionFailed(err) {
			return retired, m.fail("DeleteItem finished lease "+scope+" "+in.Unit, err)
		}
		retired = append(retired, in.Unit)
	}
	if len(retired) > 0 {
		m.log.Debug(fmt.Sprintf("deleted the leases of %d finished shards no longer in the stream: %s", len(retired), strings.Join(retired, ", ")))
	}
	return retired, nil
}

func (m *Manager) checkFingerprint(ctx context.Context, scope, pk, kind, fingerprint string) error {
	k := key(pk, planPrefix+kind)
	for attempt := 0; attempt < 2; attempt++ {
		out, err := m.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(m.table), Key: k, ConsistentRead: aws.Bool(true)})
		if err != nil {
			return m.fail("GetItem plan fingerprint of "+scope, err)
		}
		if out.Item != nil {
			stored, _ := out.Item[attrFingerprint].(*types.AttributeValueMemberS)
			if stored == nil || stored.Value != fingerprint {
				old := ""
				if stored != nil {
					old = stored.Value
				}
				return m.fingerprintError(pk, kind, old, fingerprint)
			}
			return nil
		}
		item := key(pk, planPrefix+kind)
		item[attrFingerprint] = s(fingerprint)
		item[attrUpdatedAt] = s(now())
		item[attrOwner] = s(m.worker) // who registered first; informational
		_, err = m.client.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                aws.String(m.table),
			Item:                     item,
			ConditionExpression:      aws.String("attribute_not_exists(#pk)"),
			ExpressionAttributeNames: map[string]string{"#pk": state.AttrPK},
		})
		if err == nil {
			return nil
		}
		if !isConditionFailed(err) {
			return m.fail("PutItem plan fingerprint of "+scope, err)
		}
		// Another worker registered at the same moment: compare with theirs.
	}
	return fmt.Errorf("plan fingerprint of %s in table %s keeps changing", scope, m.table)
}

// Forget deletes every lease and the plan fingerprint of scope, so that
// the next Register starts over. Use it only when no worker runs on scope.
func (m *Manager) Forget(ctx context.Context, scope string) error {
	pk, kind, err := splitScope(scope)
	if err != nil {
		return err
	}
	infos, err := m.List(ctx, scope)
	if err != nil {
		return err
	}
	sks := []string{planPrefix + kind}
	for _, in := range infos {
		sks = append(sks, in.sk)
	}
	for _, sk := range sks {
		if _, err := m.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(m.table), Key: key(pk, sk)}); err != nil {
			return m.fail("DeleteItem "+sk, err)
		}
	}
	return nil
}

// Acquire runs one round of lease taking on scope and returns the leases
// it took (possibly none). Call it when the worker starts and then
// periodically (every lease Duration or so) while the scope is not Done:
// that is how dead workers' leases are picked up and how load evens out
// when workers join.
//
// A lease is available when it is unowned, or expired: its counter did not
// change for Duration as seen by this manager's earlier Acquire calls (a
// lease owned by someone else is never expired on the first sight). A
// lease whose parents are not all finished is never available. The worker
// takes available leases up to its fair share; if none is available and
// it holds less than its share, it asks the most loaded worker to hand
// over the leases that worker holds above its share (at most MaxSteal):
// it takes them in a later round, once that worker has released them (a
// released lease is kept for the worker that asked for it for one lease
// Duration) or once they expire.
func (m *Manager) Acquire(ctx context.Context, scope string) ([]*Lease, error) {
	pk, kind, err := splitScope(scope)
	if err != nil {
		return nil, err
	}
	infos, err := m.List(ctx, scope)
	if err != nil {
		return nil, err
	}
	v := &round{pk: pk, seenAt: time.Now()} // after the read: the counters were current at least until now
	m.mu.Lock()
	m.observe(v, infos, pk+"\x00"+leasePrefix+kind+"/")
	m.checkHeld(v, infos)
	m.survey(v, infos)
	m.mu.Unlock()
	for _, l := range v.lost {
		l.markLost(reasonTaken)
	}
	for _, r := range v.requested {
		r.l.handoffRequested(r.to)
	}

	v.live[m.worker] = true
	target := (v.workable + len(v.live) - 1) / len(v.live)
	if m.opts.MaxLeases > 0 {
		target = min(target, m.opts.MaxLeases)
	}
	need := target - v.mine - v.promised[m.worker]
	if need <= 0 {
		return nil, nil
	}
	taken, err := m.takeAvailable(ctx, scope, pk, v.available, need)
	if err != nil || len(taken) > 0 || len(v.available) > 0 || m.opts.MaxSteal < 0 {
		return taken, err
	}
	return nil, m.askForHandoff(ctx, scope, pk, v.load, target, need)
}

// round is what one Acquire round sees of a scope.
type round struct {
	pk     string
	seenAt time.Time

	// Leases this manager holds: lost to another worker, asked for by
	// another worker (leaving: not counted), or still its own (mine).
	lost      []*Lease
	requested []handoffRequest
	mine      int

	load      map[string][]Info // live workers' unexpired leases, not promised to anyone
	live      map[string]bool   // workers with unexpired leases or pending requests
	promised  map[string]int    // requester → leases on their way to it
	available []Info            // leases this worker may take
	workable  int               // leases not finished whose parents are
}

type handoffRequest struct {
	l  *Lease
	to string
}

// observe updates the taker's view of the scope: when did each counter
// last change? Leases gone from the scope are forgotten. m.mu is held.
func (m *Manager) observe(v *round, infos []Info, scopePrefix string) {
	present := map[string]bool{}
	for _, in := range infos {
		id := v.pk + "\x00" + in.sk
		present[id] = true
		old, ok := m.seen[id]
		switch {
		case ok && old.counter == in.Counter:
		case !ok && in.Owner == "" && in.HandoffTo == "":
			m.seen[id] = observation{counter: in.Counter} // new and unowned: never renewed
		default:
			// A lease kept for a requester counts as fresh on first
			// sight, like an owned one.
			m.seen[id] = observation{counter: in.Counter, changed: v.seenAt}
		}
	}
	for id := range m.seen {
		if !present[id] && strings.HasPrefix(id, scopePrefix) {
			delete(m.seen, id)
		}
	}
}

// checkHeld sorts the leases this manager holds: lost, asked for by
// another worker, or still its own. m.mu is held.
func (m *Manager) checkHeld(v *round, infos []Info) {
	for _, in := range infos {
		if l := m.held[v.pk+"\x00"+in.sk]; l != nil {
			switch {
			case in.Owner != m.worker || in.Epoch != l.epoch:
				v.lost = append(v.lost, l)
			case in.HandoffTo != "" && in.HandoffTo != m.worker:
				v.requested = append(v.requested, handoffRequest{l, in.HandoffTo}) // leaving: not counted
			default:
				v.mine++
			}
		}
	}
}

// survey sorts the workable leases of the scope: available to this
// worker, promised to a requester, or held by a live worker. m.mu is held.
func (m *Manager) survey(v *round, infos []Info) {
	byUnit := map[string]Info{}
	for _, in := range infos {
		byUnit[in.Unit] = in
	}
	stale := func(in Info) bool {
		return v.seenAt.Sub(m.seen[v.pk+"\x00"+in.sk].changed) > m.opts.Duration
	}
	expired := func(in Info) bool {
		if in.Owner == "" {
			// Released for a requester: kept for it for a lease duration.
			return in.HandoffTo == "" || in.HandoffTo == m.worker || stale(in)
		}
		if in.Owner == m.worker { // ours in the table but not held: a lease we gave up for lost
			return m.held[v.pk+"\x00"+in.sk] == nil
		}
		return stale(in)
	}
	ready := func(in Info) bool {
		for _, p := range in.Parents {
			if parent, ok := byUnit[p]; ok && !parent.Finished {
				return false
			}
		}
		return true
	}
	v.load, v.live, v.promised = map[string][]Info{}, map[string]bool{}, map[string]int{}
	for _, in := range infos {
		if in.Finished || !ready(in) {
			continue
		}
		v.workable++
		if l := m.held[v.pk+"\x00"+in.sk]; l != nil && in.Owner == m.worker && in.Epoch == l.epoch {
			if in.HandoffTo != "" && in.HandoffTo != m.worker {
				v.promised[in.HandoffTo]++
				v.live[in.HandoffTo] = true
			}
			continue
		}
		if expired(in) {
			v.available = append(v.available, in)
			continue
		}
		if in.Owner != "" {
			v.live[in.Owner] = true
		}
		if in.HandoffTo != "" && in.HandoffTo != in.Owner {
			// Asked for (or released for) a worker: it is that worker's.
			v.promised[in.HandoffTo]++
			v.live[in.HandoffTo] = true
			continue
		}
		v.load[in.Owner] = append(v.load[in.Owner], in)
	}
}

// takeAvailable takes up to need of the available leases: kept for this
// worker first, then unowned, then expired ones, in random order within
// each kind.
func (m *Manager) takeAvailable(ctx context.Context, scope, pk string, available []Info, need int) ([]*Lease, error) {
	rand.Shuffle(len(available), func(i, j int) { available[i], available[j] = available[j], available[i] })
	rank := func(in Info) int {
		switch {
		case in.Owner == "" && in.HandoffTo == m.worker:
			return 0
		case in.Owner == "":
			return 1
		}
		return 2
	}
	sort.SliceStable(available, func(i, j int) bool { return rank(available[i]) < rank(available[j]) })

	var taken []*Lease
	for _, in := range available {
		if len(taken) >= need {
			break
		}
		l, err := m.take(ctx, scope, pk, in)
		if err != nil {
			return taken, err
		}
		if l != nil {
			taken = append(taken, l)
		}
	}
	return taken, nil
}

// askForHandoff is what a worker with nothing free to take does: ask the
// most loaded live worker above its share (target) to hand over its
// excess. It finishes its work in flight, checkpoints and releases; a
// later round takes the leases (or takes them once they expire, if that
// worker stops renewing).
func (m *Manager) askForHandoff(ctx context.Context, scope, pk string, load map[string][]Info, target, need int) error {
	var victim string
	for w, ls := range load {
		if w != m.worker && (victim == "" || len(ls) > len(load[victim])) {
			victim = w
		}
	}
	if victim == "" {
		return nil
	}
	vl := load[victim]
	if !(len(vl) > target || (len(vl) == target && need > 1)) {
		return nil
	}
	// Ask for the victim's excess over the fair share (at least one), up
	// to what this worker needs and MaxSteal.
	count := min(max(len(vl)-target, 1), need)
	if m.opts.MaxSteal > 0 {
		count = min(count, m.opts.MaxSteal)
	}
	rand.Shuffle(len(vl), func(i, j int) { vl[i], vl[j] = vl[j], vl[i] })
	for _, in := range vl[:count] {
		if err := m.requestHandoff(ctx, scope, pk, in); err != nil {
			return err
		}
	}
	return nil
}

// requestHandoff asks the owner of a live lease to hand it over to this
// worker: it records this worker in the lease, on condition that the
// owner and epoch are those seen and no other worker asked first. The
// counter is left alone, so the owner's heartbeat still shows whether it
// is alive.
func (m *Manager) requestHandoff(ctx context.Context, scope, pk string, in Info) error {
	_, err := m.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(m.table),
		Key:                 key(pk, in.sk),
		UpdateExpression:    aws.String("SET #handoff = :me, #at = :at"),
		ConditionExpression: aws.String("#owner = :owner AND #epoch = :epoch AND #finished = :false AND (attribute_not_exists(#handoff) OR #handoff = :me)"),
		ExpressionAttributeNames: map[string]string{
			"#owner": attrOwner, "#epoch": attrEpoch, "#finished": attrFinished, "#handoff": attrHandoff, "#at": attrUpdatedAt,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":me": s(m.worker), ":owner": s(in.Owner), ":epoch": n(in.Epoch),
			":false": &types.AttributeValueMemberBOOL{Value: false}, ":at": s(now()),
		},
	})
	if isConditionFailed(err) {
		return nil // it changed meanwhile: the next round looks again
	}
	if err != nil {
		return m.fail("request lease "+scope+" "+in.Unit, err)
	}
	m.log.Info(fmt.Sprintf("asked %s to hand %s %s over to even out the load; it is taken once released", in.Owner, scope, in.Unit), zap.String("unit", in.Unit))
	return nil
}

// take claims one lease with a write conditional on the counter seen. It
// returns nil, nil when another worker was faster.
func (m *Manager) take(ctx context.Context, scope, pk string, in Info) (*Lease, error) {
	start := time.Now()
	cond := "#counter = :seen AND #finished = :false AND "
	vals := map[string]types.AttributeValue{
		":seen": n(in.Counter), ":false": &types.AttributeValueMemberBOOL{Value: false},
		":me": s(m.worker), ":one": n(1), ":at": s(now()),
	}
	update := "SET #owner = :me, #counter = #counter + :one, #epoch = #epoch + :one, #at = :at"
	if in.Owner == "" {
		cond += "attribute_not_exists(#owner)"
		update += " REMOVE #prev, #handoff"
	} else {
		cond += "#owner = :owner"
		vals[":owner"] = s(in.Owner)
		update += ", #prev = :owner REMOVE #handoff"
	}
	out, err := m.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           aws.String(m.table),
		Key:                 key(pk, in.sk),
		UpdateExpression:    aws.String(update),
		ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: map[string]string{
			"#owner": attrOwner, "#counter": attrCounter, "#epoch": attrEpoch, "#at": attrUpdatedAt,
			"#finished": attrFinished, "#prev": attrPrevOwner, "#handoff": attrHandoff,
		},
		ExpressionAttributeValues: vals,
		ReturnValues:              types.ReturnValueAllNew,
	})
	if isConditionFailed(err) {
		return nil, nil
	}
	if err != nil {
		return nil, m.fail("take lease "+scope+" "+in.Unit, err)
	}
	got, err := decode(out.Attributes)
	if err != nil {
		return nil, err
	}
	l := newLease(m, scope, got, pk, got.Epoch, start)
	m.mu.Lock()
	m.held[l.id] = l
	m.seen[l.id] = observation{counter: got.Counter, changed: time.Now()}
	m.mu.Unlock()

	resume := "from the start"
	if got.Checkpoint != nil {
		resume = "from its checkpoint"
	}
	switch {
	case in.Owner == "" && in.HandoffTo == m.worker:
		m.log.Info(fmt.Sprintf("took %s %s, handed over at this worker's request, resuming %s", scope, in.Unit, resume), zap.String("unit", in.Unit))
	case in.Owner != "" && in.Owner != m.worker:
		m.log.Info(fmt.Sprintf("took over %s %s from %s (its lease expired), resuming %s", scope, in.Unit, in.Owner, resume), zap.String("unit", in.Unit))
	default:
		m.log.Debug(fmt.Sprintf("took %s %s, starting %s", scope, in.Unit, resume), zap.String("unit", in.Unit))
	}
	return l, nil
}

func (m *Manager) fingerprintError(pk, kind, old, now string) error {
	if old == "" {
		old = "(none)"
	}
	return &plan.Error{Msg: fmt.Sprintf(
		"checkpoint table %s holds %s progress of %s made with another plan (then: %s; now: %s). "+
			"Mixing the two would skip or repeat work: finish the run with the original settings, "+
			"or start over by deleting the items with %s = %q from %s (or name another checkpoint table)",
		m.table, kind, pk, old, now, state.AttrPK, pk, m.table)}
}
