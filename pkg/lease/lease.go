// Package lease shares the units of work of a plan entry (one per backfill
// scan segment, one per stream shard) between several ddbsync workers,
// using leases kept in the DynamoDB checkpoint table (state.DynamoStore).
//
// It follows the lease-table semantics of the Kinesis Client Library:
//
//   - Each unit has one lease item: owner (a worker ID), a lease counter
//     that the owner increments on every heartbeat, checkpoint and
//     release, a checkpoint (opaque JSON: a LastEvaluatedKey or a sequence
//     number), the parent units (stream lineage) and a finished flag.
//   - Workers take unowned or expired leases with a conditional write on
//     the counter they saw, so two workers never both win.
//   - A lease is expired when its counter has not changed for the lease
//     duration, measured on the observer's own clock (clocks of different
//     machines are never compared).
//   - The owner renews its leases every RenewEvery with a write that is
//     conditional on still owning them; a failed renew means the lease was
//     taken over, and the worker must stop that unit at once (Lost).
//     Checkpoints are conditional in the same way, so a worker that lost a
//     lease can never overwrite its new owner's progress.
//   - On a clean shutdown a worker releases its leases (owner cleared,
//     checkpoint kept) so others take them over immediately.
//   - A unit whose parents are not all finished (or gone) is not claimable.
//   - A worker takes at most its fair share (ready units / live workers);
//     when none is free it asks the most loaded worker above the fair
//     share to hand leases over (handoff_to), as the KCL 3's graceful
//     handoff does: the owner finishes its work in flight, checkpoints and
//     releases, and only then does the requester take the lease (or once
//     it expires, if the owner stops renewing).
//   - Writes to the output go through GuardWrites, which refuses to send
//     under a lease that is lost or overdue on the owner's clock.
//   - Finished stream leases are deleted once their shard has left the
//     stream's listing and their children have started (RegisterLineage).
//
// Each (entry, kind) scope also stores a plan fingerprint: a worker whose
// plan differs from the one that made the existing leases is refused with
// a *plan.Error instead of mixing two plans' progress.
package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/ddbsync/ddbsync/pkg/dynamo"
	"github.com/ddbsync/ddbsync/pkg/state"
)

// Attribute names of lease items (besides state.AttrPK and state.AttrSK).
const (
	attrUnit        = "unit"
	attrOwner       = "owner"
	attrCounter     = "counter"
	attrEpoch       = "epoch" // incremented by every take: the owner's writes are conditional on it
	attrCheckpoint  = "checkpoint"
	attrParents     = "parents"
	attrFinished    = "finished"
	attrUpdatedAt   = "updated_at"
	attrFingerprint = "fingerprint"
	attrPrevOwner   = "previous_owner"
	// attrHandoff names the worker that asked the owner to hand the lease
	// over (a graceful steal); on an unowned lease, the worker it is kept
	// for until it takes it or the lease duration passes.
	attrHandoff = "handoff_to"
	// attrRetired lists, on a child's lease, the parents whose finished
	// leases were deleted (Register never creates those again).
	attrRetired = "retired_parents"
)

// Sort-key prefixes of lease and fingerprint items.
const (
	leasePrefix = state.ReservedPrefix + "lease/"
	planPrefix  = state.ReservedPrefix + "plan/"
)

// Defaults of Options.
const (
	DefaultDuration = 20 * time.Second
)

// ErrLost is the cause of a lease's end when another worker took it over
// (or it could not be renewed in time). Test with errors.Is.
var ErrLost = errors.New("lease lost")

// ErrHandoff is the cause of a unit's context when another worker asked
// for its lease (Lease.HandoffRequested): the unit stops as on a clean
// stop, and Process releases the lease to that worker.
var ErrHandoff = errors.New("another worker asked for the lease")

// ErrEnded is returned by operations on a lease that was released or
// finished.
var ErrEnded = errors.New("lease already released or finished")

// LostError says which lease was lost and why.
type LostError struct {
	Scope, Unit string
	Reason      string
}

func (e *LostError) Error() string {
	return fmt.Sprintf("lease on %s %s lost: %s", e.Scope, e.Unit, e.Reason)
}

// Is makes errors.Is(err, ErrLost) true.
func (e *LostError) Is(target error) bool { return target == ErrLost }

// Unit is one unit of work: a scan segment ("segment-00003") or a shard
// ("shard-00000001700000000000-1a2b3c4d").
type Unit struct {
	ID string
	// Parents are the unit IDs of the parent shards; the unit is claimable
	// only once each parent is finished or has no lease.
	Parents []string
}

// Options configure a Manager.
type Options struct {
	// Duration: a lease whose counter did not change for this long is
	// expired and may be taken over. Default DefaultDuration.
	Duration time.Duration
	// RenewEvery is the heartbeat period; default Duration/3. It must be
	// well below Duration.
	RenewEvery time.Duration
	// MaxLeases caps the leases this worker holds per scope; 0: no cap.
	MaxLeases int
	// MaxSteal caps how many leases one Acquire asks a live worker that
	// holds more than its fair share to hand over; 0: its whole excess (a
	// new worker gets its share in one handoff), negative: never ask. The
	// KCL steals one at a time; a handoff waits for the owner's work in
	// flight, so asking for the excess at once is safe.
	MaxSteal int
	// Logger receives takes, steals and losses; nil: no logs.
	Logger *zap.Logger
}

// Manager takes, renews and gives up the leases of one worker. It is safe
// for concurrent use.
type Manager struct {
	client state.DynamoAPI
	table  string
	worker string
	opts   Options
	log    *zap.Logger

	running atomic.Int32 // heartbeats (Run) running

	mu   sync.Mutex
	held map[string]*Lease      // by lease item key (pk + "\x00" + sk)
	seen map[string]observation // the taker's view: last counter seen and when it changed
}

type observation struct {
	counter int64
	changed time.Time // zero: never renewed (new and unowned)
}

// NewWorkerID returns a worker ID unique to this process:
// hostname-pid-random.
func NewWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// NewManager returns the lease manager of worker on the checkpoint table
// of store (call store.EnsureTable first).
func NewManager(store *state.DynamoStore, worker string, opts Options) *Manager {
	return NewManagerFor(store.Client(), store.Table(), worker, opts)
}

// NewManagerFor is NewManager for a bare client and table name.
func NewManagerFor(client state.DynamoAPI, table, worker string, opts Options) *Manager {
	if opts.Duration <= 0 {
		opts.Duration = DefaultDuration
	}
	if opts.RenewEvery <= 0 || opts.RenewEvery >= opts.Duration {
		opts.RenewEvery = opts.Duration / 3
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if worker == "" {
		worker = NewWorkerID()
	}
	return &Manager{
		client: client, table: table, worker: worker, opts: opts,
		log:  log.With(zap.String("worker", worker)),
		held: map[string]*Lease{},
		seen: map[string]observation{},
	}
}

// Worker is the ID this manager writes as lease owner.
func (m *Manager) Worker() string { return m.worker }

// Options returns the effective options (defaults filled in).
func (m *Manager) Options() Options { return m.opts }

// Scope names the leases of one kind of work of a plan entry:
// Scope(entry.ID(), "backfill") is "ENTRY-ID/backfill".
func Scope(entryID, kind string) string { return entryID + "/" + kind }

func splitScope(scope string) (pk, kind string, err error) {
	pk, kind, ok := strings.Cut(scope, "/")
	if !ok || pk == "" || kind == "" || strings.Contains(kind, "/") || strings.HasPrefix(pk, state.ReservedPrefix) {
		return "", "", fmt.Errorf("lease scope %q is not ENTRY-ID/KIND (use lease.Scope)", scope)
	}
	return pk, kind, nil
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		state.AttrPK: &types.AttributeValueMemberS{Value: pk},
		state.AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue  { return &types.AttributeValueMemberN{Value: fmt.Sprint(v)} }

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func (m *Manager) fail(op string, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &dynamo.TableError{Table: m.table, Op: op, Err: err}
}

func now() string { return time.Now().UTC().Format(time.RFC3339Nano) }

// Info is a lease as stored in the table.
type Info struct {
	Unit       string
	Owner      string // "" when unowned
	Counter    int64
	Epoch      int64
	Finished   bool
	Parents    []string
	Checkpoint json.RawMessage // nil when none
	PrevOwner  string
	// HandoffTo is the worker that asked for the lease (see Acquire);
	// "" when none did.
	HandoffTo string
	// RetiredParents are the parents whose finished leases were deleted
	// (PruneFinished).
	RetiredParents []string
	sk             string
}

func decode(it map[string]types.AttributeValue) (Info, error) {
	var in Info
	str := func(name string) string {
		if v, ok := it[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	num := func(name string) (int64, error) {
		v, ok := it[name].(*types.AttributeValueMemberN)
		if !ok {
			return 0, nil
		}
		var x int64
		_, err := fmt.Sscan(v.Value, &x)
		return x, err
	}
	in.sk = str(state.AttrSK)
	in.Unit = str(attrUnit)
	in.Owner = str(attrOwner)
	in.PrevOwner = str(attrPrevOwner)
	in.HandoffTo = str(attrHandoff)
	if ss, ok := it[attrRetired].(*types.AttributeValueMemberSS); ok {
		in.RetiredParents = ss.Value
	}
	var err error
	if in.Counter, err = num(attrCounter); err != nil {
		return in, fmt.Errorf("lease %s: bad counter: %w", in.sk, err)
	}
	if in.Epoch, err = num(attrEpoch); err != nil {
		return in, fmt.Errorf("lease %s: bad epoch: %w", in.sk, err)
	}
	if b, ok := it[attrFinished].(*types.AttributeValueMemberBOOL); ok {
		in.Finished = b.Value
	}
	if cp := str(attrCheckpoint); cp != "" {
		in.Checkpoint = json.RawMessage(cp)
	}
	if l, ok := it[attrParents].(*types.AttributeValueMemberL); ok {
		for _, p := range l.Value {
			if ps, ok := p.(*types.AttributeValueMemberS); ok {
				in.Parents = append(in.Parents, ps.Value)
			}
		}
	}
	if in.Unit == "" {
		return in, fmt.Errorf("item %s in the checkpoint table is not a ddbsync lease (no %q attribute)", in.sk, attrUnit)
	}
	return in, nil
}

// List returns the leases of scope, in unit order.
func (m *Manager) List(ctx context.Context, scope string) ([]Info, error) {
	pk, kind, err := splitScope(scope)
	if err != nil {
		return nil, err
	}
	p := dynamodb.NewQueryPaginator(m.client, &dynamodb.QueryInput{
		TableName:              aws.String(m.table),
		KeyConditionExpression: aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
		ExpressionAttributeNames: map[string]string{
			"#pk": state.AttrPK, "#sk": state.AttrSK,
		},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(pk), ":prefix": s(leasePrefix + kind + "/"),
		},
		ConsistentRead: aws.Bool(true),
	})
	var out []Info
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, m.fail("Query leases of "+scope, err)
		}
		for _, it := range page.Items {
			in, err := decode(it)
			if err != nil {
				return nil, err
			}
			out = append(out, in)
		}
	}
	return out, nil
}

// Done reports whether scope has leases and all of them are finished.
func (m *Manager) Done(ctx context.Context, scope string) (bool, error) {
	infos, err := m.List(ctx, scope)
	if err != nil {
		return false, err
	}
	for _, in := range infos {
		if !in.Finished {
			return false, nil
		}
	}
	return len(infos) > 0, nil
}

// Held returns the leases this worker holds now.
func (m *Manager) Held() []*Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Lease, 0, len(m.held))
	for _, l := range m.held {
		out = append(out, l)
	}
	return out
}

// Release gives up every lease this worker holds (owner cleared,
// checkpoint kept) so other workers can take them over at once. Call it on
// a clean shutdown after the last checkpoints, with a context that is not
// already cancelled (context.WithoutCancel).
func (m *Manager) Release(ctx context.Context) error {
	var errs []error
	for _, l := range m.Held() {
		if err := l.Release(ctx); err != nil && !errors.Is(err, ErrLost) && !errors.Is(err, ErrEnded) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run renews the held leases every RenewEvery until ctx is done. Run it in
// its own goroutine (an errgroup) for the whole life of the worker,
// including the final checkpoints after an interrupt: give it a context
// that is cancelled only after Release. It returns nil when ctx is done.
func (m *Manager) Run(ctx context.Context) error {
	m.running.Add(1)
	defer m.running.Add(-1)
	t := time.NewTicker(m.opts.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		m.renewAll(ctx)
	}
}

func (m *Manager) renewAll(ctx context.Context) {
	held := m.Held()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for _, l := range held {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			l.renew(ctx)
		}()
	}
	wg.Wait()
}

func (m *Manager) drop(l *Lease) {
	m.mu.Lock()
	if m.held[l.id] == l {
		delete(m.held, l.id)
	}
	m.mu.Unlock()
}

// Table is the name of the checkpoint table.
func (m *Manager) Table() string { return m.table }
