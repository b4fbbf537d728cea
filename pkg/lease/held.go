package lease

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
)

// Lease is a unit of work this worker holds. Its writes are conditional on
// the worker still owning it; once it is lost, released or finished every
// operation fails and its Context is cancelled.
type Lease struct {
	m         *Manager
	scope     string
	unit      string
	parents   []string
	pk, sk    string
	id        string
	epoch     int64
	prevOwner string

	// writeMu serialises this lease's writes, so a heartbeat never races a
	// Finish or Release.
	writeMu sync.Mutex

	mu         sync.Mutex
	checkpoint json.RawMessage
	lastWrite  time.Time // start of the last successful conditional write (the owner's clock)
	ended      error     // nil while held
	lost       chan struct{}
	ctx        context.Context
	cancel     context.CancelCauseFunc

	// A handoff request: handoffCtx is cancelled (cause ErrHandoff) when
	// another worker asked for the lease; handoffTo names it.
	handoffTo     string
	handoffCtx    context.Context
	handoffCancel context.CancelCauseFunc
}

func newLease(m *Manager, scope string, in Info, pk string, epoch int64, started time.Time) *Lease {
	ctx, cancel := context.WithCancelCause(context.Background())
	hctx, hcancel := context.WithCancelCause(context.Background())
	return &Lease{
		m: m, scope: scope, unit: in.Unit, parents: in.Parents,
		pk: pk, sk: in.sk, id: pk + "\x00" + in.sk, epoch: epoch, prevOwner: in.PrevOwner,
		checkpoint: in.Checkpoint, lastWrite: started,
		lost: make(chan struct{}), ctx: ctx, cancel: cancel,
		handoffCtx: hctx, handoffCancel: hcancel,
	}
}

// Scope is the scope the lease belongs to ("ENTRY-ID/backfill").
func (l *Lease) Scope() string { return l.scope }

// Unit is the unit ID ("segment-3").
func (l *Lease) Unit() string { return l.unit }

// Parents are the parent unit IDs.
func (l *Lease) Parents() []string { return l.parents }

// PreviousOwner is the worker that owned the lease before this one took
// it ("" when it was unowned).
func (l *Lease) PreviousOwner() string { return l.prevOwner }

// Resume decodes the lease's checkpoint (the last one written by any
// owner) into v and reports whether there was one.
func (l *Lease) Resume(v any) (bool, error) {
	l.mu.Lock()
	cp := l.checkpoint
	l.mu.Unlock()
	if cp == nil {
		return false, nil
	}
	if err := json.Unmarshal(cp, v); err != nil {
		return false, fmt.Errorf("checkpoint of %s %s in table %s is damaged (%v)", l.scope, l.unit, l.m.table, err)
	}
	return true, nil
}

// Lost is closed when the lease was taken over by another worker or could
// not be renewed in time: stop working on the unit at once, without a
// final checkpoint.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Err is nil while the lease is held, then why it ended (errors.Is ErrLost
// or ErrEnded).
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ended
}

// Context is cancelled when the lease ends (lost, released or finished);
// context.Cause tells which.
func (l *Lease) Context() context.Context { return l.ctx }

// WithContext returns a context that is cancelled when parent is or when
// the lease ends, whichever comes first. Run the unit's work under it.
// Writes made through GuardWrites under this context are refused once the
// lease is lost or overdue (CheckHeld).
func (l *Lease) WithContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.WithValue(parent, guardKey{}, l))
	stop := context.AfterFunc(l.ctx, func() { cancel(context.Cause(l.ctx)) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}

// HandoffRequested is closed when another worker asked for this lease (a
// graceful steal, see Manager.Acquire): stop reading new work for the
// unit, finish or drop the work in flight, checkpoint and return, and the
// lease is released to that worker (Process does it). The lease stays
// held, and writes stay allowed, until then.
func (l *Lease) HandoffRequested() <-chan struct{} { return l.handoffCtx.Done() }

// HandoffTo names the worker that asked for the lease ("" when none did).
func (l *Lease) HandoffTo() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.handoffTo
}

// handoffRequested records a request for the lease by worker to, once.
func (l *Lease) handoffRequested(to string) {
	if to == "" || to == l.m.worker {
		return
	}
	l.mu.Lock()
	first := l.handoffTo == "" && l.ended == nil
	if first {
		l.handoffTo = to
	}
	l.mu.Unlock()
	if !first {
		return
	}
	l.m.log.Info(fmt.Sprintf("%s asked for %s %s to even out the load: finishing the work in flight, then handing it over", to, l.scope, l.unit), zap.String("unit", l.unit))
	l.handoffCancel(ErrHandoff)
}

// CheckHeld reports whether the lease may still be written under: nil
// while it is held and was renewed recently enough on this worker's own
// clock; the reason (errors.Is ErrLost or ErrEnded) otherwise. A worker
// that was paused (SIGSTOP, a frozen VM) past its lease finds the lease
// overdue here when it resumes, marks it lost and sends nothing more.
func (l *Lease) CheckHeld() error {
	if err := l.Err(); err != nil {
		return err
	}
	if l.expired(time.Now()) {
		l.markLost(fmt.Sprintf("not renewed for %s (was this worker paused?)", l.m.opts.Duration-l.m.opts.RenewEvery))
	}
	return l.Err()
}

// end marks the lease as ended with err, once.
func (l *Lease) end(err error) {
	l.mu.Lock()
	if l.ended != nil {
		l.mu.Unlock()
		return
	}
	l.ended = err
	l.mu.Unlock()
	if _, isLost := err.(*LostError); isLost {
		close(l.lost)
	}
	l.cancel(err)
	l.m.drop(l)
}

const reasonTaken = "another worker owns it now"

func (l *Lease) markLost(reason string) {
	if l.Err() != nil {
		return
	}
	err := &LostError{Scope: l.scope, Unit: l.unit, Reason: reason}
	msg := fmt.Sprintf("lost the lease on %s %s (%s); stopping that unit", l.scope, l.unit, reason)
	if reason == reasonTaken {
		// Normal when workers join and the load evens out.
		l.m.log.Info(msg, zap.String("unit", l.unit))
	} else {
		l.m.log.Warn(msg, zap.String("unit", l.unit))
	}
	l.end(err)
}

// expired reports whether the owner's own view says the lease may already
// be taken over: no successful write for Duration minus one renew period.
func (l *Lease) expired(t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return t.Sub(l.lastWrite) > l.m.opts.Duration-l.m.opts.RenewEvery
}

// write runs one conditional update of the lease: update is the SET/REMOVE
// expression without the counter increment.
func (l *Lease) write(ctx context.Context, op, update string, values map[string]types.AttributeValue) error {
	_, err := l.writeReturning(ctx, op, update, values, types.ReturnValueNone)
	return err
}

// writeReturning is write that also returns the item's attributes as rv
// asks.
func (l *Lease) writeReturning(ctx context.Context, op, update string, values map[string]types.AttributeValue, rv types.ReturnValue) (map[string]types.AttributeValue, error) {
	names := map[string]string{"#owner": attrOwner, "#epoch": attrEpoch, "#counter": attrCounter, "#at": attrUpdatedAt}
	if strings.Contains(update, "#handoff") {
		names["#handoff"] = attrHandoff
	}
	if strings.Contains(update, "#cp") {
		names["#cp"] = attrCheckpoint
	}
	if strings.Contains(update, "#finished") {
		names["#finished"] = attrFinished
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	start := time.Now()
	if l.expired(start) {
		l.markLost(fmt.Sprintf("not renewed for %s", l.m.opts.Duration-l.m.opts.RenewEvery))
		return nil, l.Err()
	}
	vals := map[string]types.AttributeValue{
		":me": s(l.m.worker), ":epoch": n(l.epoch), ":one": n(1), ":at": s(now()),
	}
	for k, v := range values {
		vals[k] = v
	}
	out, err := l.m.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(l.m.table),
		Key:                       key(l.pk, l.sk),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("#owner = :me AND #epoch = :epoch"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: vals,
		ReturnValues:              rv,
	})
	if err == nil {
		l.mu.Lock()
		l.lastWrite = start
		l.mu.Unlock()
		return out.Attributes, nil
	}
	if isConditionFailed(err) {
		return nil, errNotOwner
	}
	return nil, l.m.fail(op+" lease "+l.scope+" "+l.unit, err)
}

// errNotOwner is a failed ownership condition, before the caller decides
// whether it means the lease was lost.
var errNotOwner = errors.New("not the owner")

// lostIfNotOwner turns errNotOwner into the loss of the lease.
func (l *Lease) lostIfNotOwner(err error) error {
	if err == errNotOwner {
		l.markLost(reasonTaken)
		return l.Err()
	}
	return err
}

const setCounter = "#counter = #counter + :one, #at = :at"

func (l *Lease) renew(ctx context.Context) {
	if !l.writeMu.TryLock() {
		return // a checkpoint, finish or release is writing (and bumping the counter) right now
	}
	defer l.writeMu.Unlock()
	if l.Err() != nil {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, l.m.opts.Duration-l.m.opts.RenewEvery)
	defer cancel()
	// The renew returns the item, which tells whether another worker
	// asked for the lease.
	attrs, err := l.writeReturning(rctx, "renew", "SET "+setCounter, nil, types.ReturnValueAllNew)
	err = l.lostIfNotOwner(err)
	if err == nil {
		if to, ok := attrs[attrHandoff].(*types.AttributeValueMemberS); ok {
			l.handoffRequested(to.Value)
		}
	}
	if err != nil && l.Err() == nil && ctx.Err() == nil {
		l.m.log.Warn(fmt.Sprintf("renewing the lease on %s %s failed (will retry): %v", l.scope, l.unit, err))
		if l.expired(time.Now()) {
			l.markLost("not renewed in time: " + err.Error())
		}
	}
}

// Checkpoint records v (JSON) as the unit's progress, on condition that
// this worker still owns the lease. errors.Is(err, ErrLost) means the
// lease was taken over: stop the unit.
func (l *Lease) Checkpoint(ctx context.Context, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode checkpoint of %s %s: %w", l.scope, l.unit, err)
	}
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	if err := l.lostIfNotOwner(l.write(ctx, "checkpoint", "SET #cp = :cp, "+setCounter, map[string]types.AttributeValue{":cp": s(string(data))})); err != nil {
		return err
	}
	l.mu.Lock()
	l.checkpoint = data
	l.mu.Unlock()
	return nil
}

// Finish marks the unit done for every worker (a scanned segment, a
// closed shard whose records are all applied) and gives up the lease.
// Children of a finished unit become claimable.
func (l *Lease) Finish(ctx context.Context) error {
	return l.finalWrite(ctx, "finish", "SET #finished = :true, "+setCounter+" REMOVE #owner, #handoff",
		map[string]types.AttributeValue{":true": &types.AttributeValueMemberBOOL{Value: true}},
		func(in Info) bool { return in.Finished && in.Epoch == l.epoch },
		fmt.Errorf("%w: %s %s finished", ErrEnded, l.scope, l.unit))
}

// Release gives the lease up (owner cleared, checkpoint kept) so another
// worker can take it at once. A lease another worker asked for (see
// HandoffRequested) stays kept for that worker for one lease duration.
func (l *Lease) Release(ctx context.Context) error {
	return l.finalWrite(ctx, "release", "SET "+setCounter+" REMOVE #owner", nil,
		func(in Info) bool { return in.Owner == "" && in.Epoch == l.epoch },
		fmt.Errorf("%w: %s %s released", ErrEnded, l.scope, l.unit))
}

// finalWrite is Finish or Release. A retried request whose first attempt
// was applied fails its condition; done recognises that case.
func (l *Lease) finalWrite(ctx context.Context, op, update string, values map[string]types.AttributeValue, done func(Info) bool, ended error) error {
	l.writeMu.Lock()
	defer l.writeMu.Unlock()
	err := l.write(ctx, op, update, values)
	if err == errNotOwner {
		// A retried request whose first attempt was applied fails its
		// condition: look whether the lease is in the state we wanted.
		out, gerr := l.m.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(l.m.table), Key: key(l.pk, l.sk), ConsistentRead: aws.Bool(true)})
		if gerr == nil && out.Item != nil {
			if in, derr := decode(out.Item); derr == nil && done(in) {
				err = nil
			}
		}
	}
	if err != nil {
		return l.lostIfNotOwner(err)
	}
	l.m.log.Debug(fmt.Sprintf("%s the lease on %s %s", map[string]string{"finish": "finished", "release": "released"}[op], l.scope, l.unit), zap.String("unit", l.unit))
	l.end(ended)
	return nil
}
