// Package figures is seatflow's figure core: pure, deterministic code with
// no I/O that applies events (SPEC §2) in any order and produces exactly the
// snapshot rows of SPEC §3 and §4, with the watermark, day closing and
// restatement rules of §5.
//
// Layout, chosen for tens of millions of users per process:
//   - per tenant, users are a 64-bit fingerprint of user_id mapped to a dense
//     index; no user_id string is kept (user_activity rows take it from the
//     event that first shows the activity);
//   - per tenant and workload, one 64-bit day bitmap per user: bit i is
//     "active on day base+i", with one base for the whole engine;
//   - per tenant and SKU, one byte per user: never/unassigned, assigned, or
//     "has recent history", whose events (needed to know who held a seat on
//     which day) sit in a small side map until they age out.
//
// Figures are recomputed per tenant from the bitmaps for the days that may
// have changed, and compared with what was last emitted, so a Emit emits
// only rows that changed: provisional rows of open days, final rows of
// closed days, and restated rows after late events.
package figures

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/pipeline/event"
	"github.com/seatflow/seatflow/pipeline/row"
)

// Window is the active-user window of SPEC §3, in days.
const Window = 28

// bits per activity bitmap: the days the engine can hold at once.
const bits = 64

// MaxWorkloads bounds distinct workload names per engine; usage of further
// unknown workloads is rejected (too_many_workloads) rather than letting a
// bad publisher grow state without bound.
const MaxWorkloads = 64

// Config tunes an Engine.
type Config struct {
	Catalog  *catalog.Catalog
	Lateness time.Duration // allowed lateness; default 1 h
	Horizon  time.Duration // restatement horizon before the watermark; default 7 days
	// MaxSkew is how far a source's events may run ahead of the slowest
	// busy source's before Apply answers ErrSkew (watermark alignment);
	// 0: no limit. DefaultMaxSkew is the product's default.
	MaxSkew time.Duration
	// NoUserActivity keeps no user_activity rows: Emit returns none, and
	// every other row is the same. The per-user detail is personal data a
	// deployment may not want, and at about one row per usage event it is
	// the largest part of the output.
	NoUserActivity bool
	// Limits bound each tenant's state; zero fields take DefaultLimits'.
	Limits Limits
}

// Limits bound one tenant's state (SPEC §2): an event that would grow a
// tenant past them is refused as limit_exceeded and changes nothing, so a
// publisher sending random IDs cannot grow memory until the process dies.
type Limits struct {
	Users         int // distinct user_ids seen
	Subscriptions int
	SKUs          int // SKUs with a subscription or an assignment
}

// DefaultMaxSkew lets a source run a day of event time ahead of the
// slowest: a backfill of weeks then recomputes each day about once.
const DefaultMaxSkew = 24 * time.Hour

// DefaultLimits fit the largest real tenants with room to spare: a few
// hundred thousand users, a few hundred subscriptions, tens of SKUs.
var DefaultLimits = Limits{Users: 5_000_000, Subscriptions: 10_000, SKUs: 1_000}

// ErrAhead means the event's day is too far ahead for the engine's 64-day
// bitmaps. The caller should Emit (rows not yet written hold old days in
// place) and apply the event again; if it is still ahead, pause that source
// until the watermark advances (watermark alignment), then retry.
var ErrAhead = errors.New("event too far ahead of the watermark; pause this source")

// ErrSkew means the event's source has run more than MaxSkew ahead of the
// slowest busy source: pause it until that one catches up (watermark
// alignment). Without it, in a backfill where partitions are read at
// different speeds, one partition runs weeks ahead of another, and every
// flush recomputes each lagging tenant's days up to the newest day. The
// slowest source itself is never paused, so some source can always go on.
var ErrSkew = errors.New("source too far ahead of the slowest; pause it until that one catches up")

// Outcome says what Apply did with an accepted event.
type Outcome uint8

const (
	// OnTime: the event is at or after the watermark.
	OnTime Outcome = iota
	// Restated: a late event inside the restatement horizon; the days it
	// affects are rewritten with a higher version.
	Restated
)

// Engine holds the figure state. It is not safe for concurrent use.
type Engine struct {
	cfg      Config // as given to New: ReadState makes its engine with it
	lateness int64  // cfg's, with the defaults applied
	horizon  int64
	maxSkew  int64 // 0: no limit
	limits   Limits

	workloads []string // workload id → canonical name
	// workloadsByLen: a workload's names (its own, and the catalog's
	// aliases of it) → id, by the name's length. With the aliases in, an
	// event's workload takes one or two string compares; hashing it for a
	// map cost 7% of decoding and applying an event.
	workloadsByLen [][]workloadName
	// catalogWorkloads: ids below it are the catalog's, above are unknown
	catalogWorkloads int
	skus             map[string]*skuInfo

	tenants map[string]*tenant
	order   []*tenant // tenants in first-seen order, for deterministic output

	sources map[int32]*source
	// sourceList holds the sources for the watermark's scan, which ran
	// once per event of the slowest source: over a map, that scan and the
	// lookup of the event's source were 4% of a 10M-event drain. lastSource
	// is the one looked up last (events come in runs of one source).
	sourceList []*source
	lastSource *source
	watermark  int64 // math.MinInt64 until every source has a high mark or an idle mark
	slowest    int64 // lowest high mark of a busy source; math.MinInt64 if none
	maxTime    int64 // highest occurred_at accepted
	base       event.Day
	// foldedBase is the base at the last fold of old history (compact);
	// math.MinInt32 before the first (and in a restored state).
	foldedBase event.Day
	started    bool
	closed     event.Day // days <= closed were emitted final
	computed   event.Day // every tenant has rows computed through this day
	// unflushedFrom is the oldest day an event touched since the last
	// Emit: its rows are not written yet, so its activity must stay.
	unflushedFrom event.Day

	remap []uint8 // ReadState's: a stored workload's position → its id now

	pendingSubs []row.Subscription
	activity    activityLog
	span        span // Emit's scratch

	stats Stats
}

// Stats counts accepted events the catalog does not describe; they are
// kept (see README, "Figures"), and an SRE should hear of them.
type Stats struct {
	UnknownSKUEvents      uint64 // subscription/assignment events of a SKU not in the catalog
	UnknownWorkloadEvents uint64 // usage events of a workload no SKU has
}

// Stats returns the counters since the engine was made.
func (e *Engine) Stats() Stats { return e.stats }

type source struct {
	id   int32
	high int64
	idle bool
	seen bool
	// idleAt, while idle, is the newest event time of any source when
	// this one was last found read to its end: the watermark passes this
	// source only that far. Events published to it afterwards (a backlog
	// replayed into a live pipeline, reaching some partitions first)
	// were not there to be read, so the watermark must not have run past
	// them on other partitions' events.
	idleAt int64
}

// skuInfo is a SKU as the engine uses it.
type skuInfo struct {
	name, product string
	workloads     []uint8 // workload ids
	known         bool
}

// New makes an empty engine.
func New(cfg Config) (*Engine, error) {
	given := cfg
	if cfg.Catalog == nil {
		return nil, errors.New("figures: a SKU catalog is required")
	}
	if cfg.Lateness == 0 {
		cfg.Lateness = time.Hour
	}
	if cfg.Horizon == 0 {
		cfg.Horizon = 7 * 24 * time.Hour
	}
	if cfg.MaxSkew < 0 {
		return nil, fmt.Errorf("max skew %s is negative; 0 turns alignment off", cfg.MaxSkew)
	}
	lim := &cfg.Limits
	lim.Users = cmp.Or(lim.Users, DefaultLimits.Users)
	lim.Subscriptions = cmp.Or(lim.Subscriptions, DefaultLimits.Subscriptions)
	lim.SKUs = cmp.Or(lim.SKUs, DefaultLimits.SKUs)
	if cfg.Limits.Users < 0 || cfg.Limits.Subscriptions < 0 || cfg.Limits.SKUs < 0 {
		return nil, fmt.Errorf("figures: limits %+v must not be negative", cfg.Limits)
	}
	if cfg.Lateness < 0 || cfg.Horizon < 0 {
		return nil, fmt.Errorf("figures: lateness %s and horizon %s must not be negative", cfg.Lateness, cfg.Horizon)
	}
	// Days the bitmaps must hold: the window before the oldest restatable
	// day, the horizon, the lateness, and today.
	if need := Window + int(cfg.Horizon/(24*time.Hour)) + int(cfg.Lateness/(24*time.Hour)) + 3; need > bits {
		return nil, fmt.Errorf("figures: a %s horizon and %s lateness need %d days of history; at most %d fit", cfg.Horizon, cfg.Lateness, need, bits)
	}
	e := &Engine{
		cfg: given, lateness: int64(cfg.Lateness), horizon: int64(cfg.Horizon), maxSkew: int64(cfg.MaxSkew), limits: cfg.Limits,
		skus:    map[string]*skuInfo{},
		tenants: map[string]*tenant{}, sources: map[int32]*source{},
		watermark: math.MinInt64, slowest: math.MinInt64, maxTime: math.MinInt64, closed: math.MinInt32,
		computed: math.MinInt32, unflushedFrom: math.MaxInt32, foldedBase: math.MinInt32,
	}
	for _, w := range cfg.Catalog.Workloads() {
		e.workloadIDOf(w)
	}
	e.catalogWorkloads = len(e.workloads)
	for alias, workload := range cfg.Catalog.Aliases() {
		id, _ := e.workloadIDOf(workload) // a catalog workload, registered above
		e.nameWorkload(alias, id)
	}
	return e, nil
}

// SetSources declares the input sources (Kafka partitions of both topics):
// until each has produced an event or been marked idle, it holds the
// watermark back.
func (e *Engine) SetSources(ids ...int32) {
	for _, id := range ids {
		e.source(id)
	}
	e.updateWatermark()
}

// SetIdle marks a source read to its end (idle) or busy again. An idle
// source holds the watermark back only as far as the newest event of any
// source at the time it was marked: call SetIdle(id, true) again whenever
// the source is again found at its end, and the watermark follows the
// others.
func (e *Engine) SetIdle(id int32, idle bool) {
	s := e.source(id)
	s.idle = idle
	if idle {
		s.idleAt = e.maxTime // math.MinInt64 before any event: no bound yet
		if s.seen {
			s.idleAt = max(s.idleAt, s.high)
		}
	}
	e.updateWatermark()
}

func (e *Engine) source(id int32) *source {
	if s := e.lastSource; s != nil && s.id == id {
		return s
	}
	s := e.sources[id]
	if s == nil {
		s = &source{id: id, high: math.MinInt64}
		e.sources[id] = s
		e.sourceList = append(e.sourceList, s)
	}
	e.lastSource = s
	return s
}

// Watermark is the current watermark (Unix ns); math.MinInt64 before any.
func (e *Engine) Watermark() int64 { return e.watermark }

func (e *Engine) updateWatermark() {
	low, slowest := int64(math.MaxInt64), int64(math.MaxInt64)
	defined := true
	for _, s := range e.sourceList {
		switch {
		case s.idle:
			low = min(low, s.idleAt)
		case !s.seen:
			defined = false // a source with nothing read yet holds the watermark
		default:
			low = min(low, s.high)
			slowest = min(slowest, s.high)
		}
	}
	e.slowest = math.MinInt64
	if slowest != math.MaxInt64 {
		e.slowest = slowest
	}
	if !defined || low == math.MinInt64 || low == math.MaxInt64 {
		return
	}
	if wm := low - e.lateness; wm > e.watermark {
		e.watermark = wm
	}
}

func (e *Engine) workloadIDOf(name string) (uint8, bool) {
	if n := len(name); n < len(e.workloadsByLen) {
		for _, w := range e.workloadsByLen[n] {
			if w.name == name {
				return w.id, true
			}
		}
	}
	if len(e.workloads) >= MaxWorkloads {
		return 0, false
	}
	id := uint8(len(e.workloads))
	name = strings.Clone(name) // the event's strings alias the decoder's buffer
	e.workloads = append(e.workloads, name)
	e.nameWorkload(name, id)
	return id, true
}

// workloadName is a name workloadIDOf finds a workload by.
type workloadName struct {
	name string
	id   uint8
}

func (e *Engine) nameWorkload(name string, id uint8) {
	if n := len(name); n >= len(e.workloadsByLen) {
		e.workloadsByLen = append(e.workloadsByLen, make([][]workloadName, n+1-len(e.workloadsByLen))...)
	}
	e.workloadsByLen[len(name)] = append(e.workloadsByLen[len(name)], workloadName{name, id})
}

func (e *Engine) sku(name string) *skuInfo {
	if s := e.skus[name]; s != nil {
		return s
	}
	s := &skuInfo{name: strings.Clone(name)} // the event's strings alias the decoder's buffer
	if c, ok := e.cfg.Catalog.SKU(name); ok {
		s.known, s.product = true, c.Product
		for _, w := range c.Workloads {
			id, _ := e.workloadIDOf(w) // catalog workloads were registered first
			s.workloads = append(s.workloads, id)
		}
	}
	e.skus[s.name] = s
	return s
}

// restatableFrom is the oldest day a late event may still change.
func (e *Engine) restatableFrom() event.Day {
	if e.watermark == math.MinInt64 {
		return math.MinInt32
	}
	return event.DayOf(e.watermark - e.horizon)
}

// floor is the oldest day whose activity is still needed: the window
// before the oldest day that may still be (re)written.
func (e *Engine) floor() event.Day {
	r := e.restatableFrom()
	if r == math.MinInt32 {
		return r
	}
	oldest := min(r, e.unflushedFrom)
	if e.computed != math.MinInt32 {
		oldest = min(oldest, e.computed+1) // rows not computed yet still need their window
	}
	return oldest - (Window - 1)
}

// Apply applies one decoded event read from source src. A *event.Rejection
// (too_late, too_many_workloads) means the event goes to the dead-letter
// topic; ErrAhead means retry after the watermark advances, ErrSkew after
// the slowest busy source catches up.
func (e *Engine) Apply(src int32, ev *event.Event) (Outcome, *event.Rejection, error) {
	outcome := OnTime
	if ev.OccurredAt < e.watermark {
		if ev.OccurredAt < e.watermark-e.horizon {
			return 0, &event.Rejection{Reason: event.TooLate, Detail: fmt.Sprintf("occurred_at is more than %s before the watermark %s",
				time.Duration(e.horizon), time.Unix(0, e.watermark).UTC().Format(time.RFC3339))}, nil
		}
		outcome = Restated
	}
	day := event.DayOf(ev.OccurredAt)
	if !e.started {
		e.started = true
		e.base = day - (bits - 24) // room for late and out-of-order events before the first one
	}
	if day < e.base {
		return 0, &event.Rejection{Reason: event.TooLate, Detail: "occurred_at is older than the engine's window (before any watermark)"}, nil
	}
	if e.maxSkew > 0 && e.slowest != math.MinInt64 && ev.OccurredAt > e.slowest+e.maxSkew {
		// The slowest busy source itself is never paused: it goes on
		// or, read to its end, turns idle, and the next slowest leads.
		if s := e.source(src); s.idle || !s.seen || s.high > e.slowest {
			return 0, nil, ErrSkew
		}
	}
	t := e.tenant(ev.TenantID)
	u, w, r := e.admit(t, ev)
	if r != nil {
		return 0, r, nil // before the source's high mark: a rejected event moves no watermark
	}
	// The source's high mark moves first: when this source was holding the
	// watermark back, the event itself may let the bitmaps slide.
	e.advanceSource(src, ev.OccurredAt)
	if day >= e.base+bits {
		if err := e.rebase(day - bits + 1); err != nil {
			return 0, nil, err
		}
	}
	switch ev.Kind {
	case event.Usage:
		e.applyUsage(t, u, w, ev, day)
	case event.Assignment:
		e.applyAssignment(t, u, ev, day)
	case event.Subscription:
		e.applySubscription(t, ev, day)
	}
	if ev.Kind != event.Usage && !e.sku(ev.SKU).known {
		e.stats.UnknownSKUEvents++
	}
	t.dirtyFrom = min(t.dirtyFrom, day)
	t.firstDay = min(t.firstDay, day)
	e.unflushedFrom = min(e.unflushedFrom, day)
	if ev.OccurredAt > e.maxTime {
		e.maxTime = ev.OccurredAt
	}
	return outcome, nil, nil
}

// admit refuses an event that would grow tenant t past the limits (or the
// engine past MaxWorkloads) before it changes anything, and finds the
// event's user index and, for usage, its workload id.
func (e *Engine) admit(t *tenant, ev *event.Event) (u uint32, w uint8, r *event.Rejection) {
	lim := &e.limits
	if ev.Kind == event.Subscription && t.subs[ev.SubscriptionID] == nil && len(t.subs) >= lim.Subscriptions {
		return 0, 0, limitExceeded("subscriptions", lim.Subscriptions)
	}
	if ev.Kind != event.Usage && t.skus[ev.SKU] == nil && len(t.skus) >= lim.SKUs {
		return 0, 0, limitExceeded("SKUs", lim.SKUs)
	}
	if ev.Kind == event.Subscription {
		return 0, 0, nil
	}
	fp := fingerprint(ev.UserID)
	u, known := t.users.find(fp)
	if !known && t.users.len() >= lim.Users {
		return 0, 0, limitExceeded("users", lim.Users)
	}
	if ev.Kind == event.Usage {
		var ok bool
		if w, ok = e.workloadIDOf(ev.Workload); !ok { // an alias finds its workload's id
			return 0, 0, &event.Rejection{Reason: event.TooManyWorkloads, Detail: "more than 64 distinct workloads; add known ones to the SKU catalog"}
		}
	}
	if !known {
		u = t.users.add(fp)
	}
	return u, w, nil
}

func limitExceeded(what string, limit int) *event.Rejection {
	return &event.Rejection{Reason: event.LimitExceeded, Detail: fmt.Sprintf("the tenant already has %d %s, its limit", limit, what)}
}

func (e *Engine) advanceSource(src int32, at int64) {
	s := e.source(src)
	if !s.seen || at > s.high || s.idle {
		// Only a source that was idle, new, or the slowest busy one can
		// move the watermark or the slowest mark (a busy source holding
		// the watermark back is the slowest): skip the scan over all
		// sources otherwise (it ran once per event).
		holding := !s.seen || s.idle || s.high <= e.slowest
		s.idle, s.seen = false, true
		s.high = max(s.high, at)
		if holding {
			e.updateWatermark()
		}
	}
}

// rebase moves the bitmaps' first day to newBase if no needed day is lost.
func (e *Engine) rebase(newBase event.Day) error {
	if newBase <= e.base {
		return nil
	}
	if f := e.floor(); f == math.MinInt32 || newBase > f {
		// Shift as far as allowed; the event may still not fit.
		if f == math.MinInt32 || f <= e.base {
			return ErrAhead
		}
		e.shift(f - e.base)
		return ErrAhead
	}
	e.shift(newBase - e.base)
	return nil
}

func (e *Engine) shift(by event.Day) {
	for _, t := range e.order {
		for _, col := range t.act {
			for i := range col {
				col[i] >>= uint(by)
			}
		}
		for _, ts := range t.skus {
			for _, h := range ts.hist {
				h.shift(by)
			}
		}
	}
	e.base += by
}

func fingerprint(userID string) uint64 { return xxhash.Sum64String(userID) }

// Tenants counts the tenants tracked.
func (e *Engine) Tenants() int { return len(e.order) }

// TenantSKUs counts the (tenant, SKU) pairs tracked.
func (e *Engine) TenantSKUs() int {
	n := 0
	for _, t := range e.order {
		n += len(t.skuOrder)
	}
	return n
}

// Users counts the users tracked, over all tenants.
func (e *Engine) Users() int {
	n := 0
	for _, t := range e.order {
		n += t.users.len()
	}
	return n
}
