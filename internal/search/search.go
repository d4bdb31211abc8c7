// Package search finds the highest rate a path carries within a loss ratio goal, such as the Non-Drop Rate (NDR,
// no loss) and the Partial-Drop Rate (PDR, for example at most 0.5% lost): the throughput test of RFC 2544,
// searched as MLRsearch (RFC 9971) does. It knows nothing of packets or clusters: a Trial function sends at a
// rate for a duration and says what was sent and received, whoever does the sending (the CLI between two
// hosts, the operator across a cluster).
//
// The search starts with a trial at the maximum rate, goes on with a trial at the rate the path forwarded in it,
// then narrows each goal's interval (the highest rate within the goal, the lowest one beyond it) by bisection,
// in phases of growing trial duration and shrinking width: short trials find the neighbourhood cheaply, and
// only the last phase's trials, at the final duration, decide the result. Each phase starts from the previous
// phase's bounds, measured again at its duration. A trial whose result contradicts another of the same phase
// (a lower rate losing more than a goal allows while a higher one did not, or the reverse; or a lower rate
// losing a larger share than a higher one by more than the precision) is repeated once, and the repeat's result
// stands over the trial it contradicts.
//
// Run drives a search to its end with a Trial function. Search drives it one trial at a time (Next, Record), for
// a driver that cannot block in a loop: a search is deterministic, so the history of its trials is all of its
// state.
package search

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// Goal is a loss ratio goal: the highest rate whose trials lose at most LossRatio of the frames sent.
type Goal struct {
	// Name is what the result is called, such as NDR or PDR.
	Name string `json:"name"`
	// LossRatio is the share of the frames sent that a trial may lose and still count as within the goal:
	// 0 for NDR, 0.005 for a PDR of 0.5%.
	LossRatio float64 `json:"lossRatio"`
}

// NDR is the Non-Drop Rate's goal: no frame lost.
var NDR = Goal{Name: "NDR"}

// Config is what to search for and how hard to look. Rates are frames per second.
type Config struct {
	// Goals are the loss ratio goals searched for at once, with the same trials. Empty: NDR alone.
	Goals []Goal
	// MaxRate is the first trial's rate and the highest one tried. 0: the first trial runs as fast as the
	// sender goes (rate 0 to the Trial function), and the rate it sent at is the maximum.
	MaxRate float64
	// MinRate is the lowest rate tried: a goal that even this rate misses has no rate (0). 0: MaxRate/1000.
	MinRate float64
	// Precision is the relative width at which a goal's interval is narrow enough: (upper-lower)/upper.
	// 0: DefaultPrecision.
	Precision float64
	// FinalDuration is the duration of the last phase's trials, those that decide the result.
	// 0: DefaultFinalDuration.
	FinalDuration time.Duration
	// InitialDuration is the duration of the first phase's trials. 0: a tenth of FinalDuration.
	InitialDuration time.Duration
	// Phases is the number of phases, from InitialDuration to FinalDuration (geometric steps), each
	// halving the width it stops at, down to Precision in the last. 0: DefaultPhases.
	Phases int
	// MaxTrials bounds the number of trials: a search that has not converged by then stops with what it has
	// (Result.Complete false). 0: DefaultMaxTrials.
	MaxTrials int
}

// Defaults of Config.
const (
	DefaultPrecision     = 0.01
	DefaultFinalDuration = 10 * time.Second
	DefaultPhases        = 3
	DefaultMaxTrials     = 60
)

// Field names a field of Config in errors, so that each front end can name it its own way (a flag, a spec path).
type Field string

// The fields a ConfigError can name.
const (
	FieldGoals           Field = "goals"
	FieldMaxRate         Field = "maxRate"
	FieldMinRate         Field = "minRate"
	FieldPrecision       Field = "precision"
	FieldFinalDuration   Field = "finalDuration"
	FieldInitialDuration Field = "initialDuration"
	FieldPhases          Field = "phases"
	FieldMaxTrials       Field = "maxTrials"
)

// ConfigError is bad input: which field, the value given, and what would work.
type ConfigError struct {
	Field Field
	Value string
	// Problem says what is wrong with the value and what would work instead.
	Problem string
}

func (e *ConfigError) Error() string { return e.Message(string(e.Field)) }

// Message is the error with its field called name.
func (e *ConfigError) Message(name string) string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", name, e.Problem)
	}
	return fmt.Sprintf("%s %s: %s", name, e.Value, e.Problem)
}

func fieldError(f Field, value any, format string, args ...any) *ConfigError {
	return &ConfigError{Field: f, Value: fmt.Sprint(value), Problem: fmt.Sprintf(format, args...)}
}

// Validated is c with its defaults filled in (MinRate only once MaxRate is known), or what is wrong with it.
// Run calls it; front ends may call it first to refuse bad input before they set anything up.
func (c Config) Validated() (Config, error) {
	if len(c.Goals) == 0 {
		c.Goals = []Goal{NDR}
	}
	if c.Precision == 0 {
		c.Precision = DefaultPrecision
	}
	if c.FinalDuration == 0 {
		c.FinalDuration = DefaultFinalDuration
	}
	if c.InitialDuration == 0 {
		c.InitialDuration = c.FinalDuration / 10
	}
	if c.Phases == 0 {
		c.Phases = DefaultPhases
	}
	if c.MaxTrials == 0 {
		c.MaxTrials = DefaultMaxTrials
	}
	var errs []error
	names := map[string]bool{}
	for _, g := range c.Goals {
		if g.LossRatio < 0 || g.LossRatio >= 1 || math.IsNaN(g.LossRatio) {
			errs = append(errs, fieldError(FieldGoals, g.LossRatio, "a loss ratio is at least 0 and below 1 (0.005 is 0.5%%)"))
		}
		if g.Name == "" || names[g.Name] {
			errs = append(errs, fieldError(FieldGoals, g.Name, "give each goal a name of its own (NDR, PDR)"))
		}
		names[g.Name] = true
	}
	if c.MaxRate < 0 || math.IsNaN(c.MaxRate) || math.IsInf(c.MaxRate, 0) {
		errs = append(errs, fieldError(FieldMaxRate, c.MaxRate, "give a positive rate, or 0 for as fast as the sender goes"))
	}
	if c.MinRate < 0 || math.IsNaN(c.MinRate) || (c.MaxRate > 0 && c.MinRate >= c.MaxRate) {
		errs = append(errs, fieldError(FieldMinRate, c.MinRate, "give a positive rate below the maximum rate (%g)", c.MaxRate))
	}
	if c.Precision <= 0 || c.Precision >= 0.5 || math.IsNaN(c.Precision) {
		errs = append(errs, fieldError(FieldPrecision, c.Precision, "give a relative width above 0 and below 0.5 (0.01 is 1%%)"))
	}
	if c.FinalDuration < time.Millisecond {
		errs = append(errs, fieldError(FieldFinalDuration, c.FinalDuration, "give a trial duration of at least 1ms"))
	}
	if c.InitialDuration < time.Millisecond || c.InitialDuration > c.FinalDuration {
		errs = append(errs, fieldError(FieldInitialDuration, c.InitialDuration, "give at least 1ms and at most the final duration (%s)", c.FinalDuration))
	}
	if c.Phases < 1 || c.Phases > 10 {
		errs = append(errs, fieldError(FieldPhases, c.Phases, "give 1 to 10 phases"))
	}
	if c.MaxTrials < 1 {
		errs = append(errs, fieldError(FieldMaxTrials, c.MaxTrials, "give at least 1 trial"))
	}
	return c, errors.Join(errs...)
}

// phase is the trial duration and the relative width at which a goal is narrow enough, of phase i.
func (c Config) phase(i int) (time.Duration, float64) {
	last := c.Phases - 1
	if last == 0 {
		return c.FinalDuration, c.Precision
	}
	ratio := float64(c.FinalDuration) / float64(c.InitialDuration)
	d := time.Duration(float64(c.InitialDuration) * math.Pow(ratio, float64(i)/float64(last)))
	if i == last {
		d = c.FinalDuration // exactly, whatever the rounding
	}
	return d, c.Precision * math.Pow(2, float64(last-i))
}

// Counts are what a trial sent and what of it the far end received.
type Counts struct {
	Sent     uint64 `json:"sent"`
	Received uint64 `json:"received"`
}

// TrialFunc sends at rate frames per second (0: as fast as the sender goes) for duration, and returns what was
// sent and received once the frames in flight have arrived.
type TrialFunc func(ctx context.Context, rate float64, duration time.Duration) (Counts, error)

// Trial is one trial of a search.
type Trial struct {
	// Phase is the phase the trial belongs to (0 is the first).
	Phase int `json:"phase"`
	// Rate is the rate offered, in frames per second: for a first trial without MaxRate, the rate it sent at.
	Rate     float64       `json:"rate"`
	Duration time.Duration `json:"duration"`
	Counts
	// LossRatio is the share of the frames sent that were not received.
	LossRatio float64 `json:"lossRatio"`
	// Repeat says the trial repeats the one before it, whose result contradicted another trial of its phase.
	Repeat bool `json:"repeat,omitempty"`
}

// lossRatio is (sent-received)/sent, 0 when nothing was sent or more arrived than was sent.
func lossRatio(c Counts) float64 {
	if c.Sent == 0 || c.Received >= c.Sent {
		return 0
	}
	return float64(c.Sent-c.Received) / float64(c.Sent)
}

// forwardingRate is the rate the trial's frames arrived at.
func (t Trial) forwardingRate() float64 {
	return float64(t.Received) / t.Duration.Seconds()
}

// GoalResult is what a search found for one goal.
type GoalResult struct {
	Goal
	// Rate is the highest rate whose trial (at the final duration, for a complete search) was within the goal:
	// the NDR or PDR. 0: even the minimum rate lost more.
	Rate float64 `json:"rate"`
	// Upper is the lowest rate whose trial lost more than the goal allows; 0: none did (Rate is the maximum).
	Upper float64 `json:"upper,omitempty"`
}

// Result is a search's outcome.
type Result struct {
	// Goals are the results in the order of Config's goals.
	Goals []GoalResult `json:"goals"`
	// MaxRate is the highest rate tried (Config's, or what the first trial sent at).
	MaxRate float64 `json:"maxRate"`
	Trials  []Trial `json:"trials"`
	// Complete is false when the search stopped at MaxTrials, or was cancelled, before every goal converged:
	// the rates are then the best bounds so far, maybe from shorter trials.
	Complete bool `json:"complete"`
}

// bounds are one goal's interval in the current phase: the highest rate within the goal and the lowest rate
// beyond it, measured at the phase's duration.
type bounds struct {
	goal         Goal
	lower, upper *Trial
	// hintLower and hintUpper are the previous phase's bounds (0: none), measured again before anything else.
	hintLower, hintUpper float64
	// stepUp and stepDown are the relative steps away from a bound: the phase's width at first, doubled each
	// time a step lands on the same side, so that a search far off the mark gets there in a few trials.
	stepUp, stepDown float64
	// forwardingMissed says a trial at the forwarding rate of the upper bound's trial lost too much: the path
	// does not simply cut at a rate (it loses a share of everything, say), so steps take over for this phase.
	forwardingMissed bool
}

// move is how a goal chose a trial's rate, which says what the trial's result teaches it.
type move int

const (
	// moveOther is the maximum, a previous phase's bound, or a bisection.
	moveOther move = iota
	// moveForwarding is down to the rate the path forwarded in the upper bound's trial.
	moveForwarding
	moveStepDown
	moveStepUp
)

// Run searches, calling trial for each trial in turn and onTrial (if not nil) with each as it ends. It returns
// what it found with every trial; an error when cfg is invalid, a trial fails, or ctx ends (with the result so
// far, not Complete).
func Run(ctx context.Context, cfg Config, trial TrialFunc, onTrial func(Trial)) (Result, error) {
	s, err := New(cfg)
	if err != nil {
		return Result{}, err
	}
	for {
		step, ok := s.Next()
		if !ok {
			return s.Result(), nil
		}
		if err := ctx.Err(); err != nil {
			return s.Result(), err
		}
		c, err := trial(ctx, step.Rate, step.Duration)
		if err != nil {
			return s.Result(), fmt.Errorf("trial %d at %.0f frames/s for %s: %w", len(s.res.Trials)+1, step.Rate, step.Duration, err)
		}
		t, err := s.Record(c)
		if err != nil {
			return s.Result(), err
		}
		if onTrial != nil {
			onTrial(t)
		}
	}
}

// Search is a search in progress, driven one trial at a time: Next says which trial to run, Record takes what it
// sent and received. A search is deterministic: a new Search fed a recorded history (Next, then Record with each
// trial's counts, in order) reaches the same state, so that a driver keeping only the history (a controller, in
// a status) resumes where it left off.
type Search struct {
	cfg   Config
	res   Result
	goals []*bounds
	// chooser is the goal that chose the pending trial's rate, by move.
	chooser *bounds
	move    move
	// phase is the current phase; phaseStarted says its bounds were set up from the previous phase's.
	phase        int
	phaseStarted bool
	// pending is the trial Next returned, until Record takes its counts.
	pending *Step
	// contradicting is a trial that contradicted a bound, to be repeated before its result counts.
	contradicting *Trial
	done          bool
}

// Step is a trial to run.
type Step struct {
	Phase int
	// Rate is in frames per second; 0: as fast as the sender goes (the first trial without a maximum rate).
	Rate     float64
	Duration time.Duration
	// Repeat says the trial repeats the one before, whose result contradicted another trial of its phase.
	Repeat bool
}

// New starts a search of cfg, which it validates.
func New(cfg Config) (*Search, error) {
	cfg, err := cfg.Validated()
	if err != nil {
		return nil, err
	}
	s := &Search{cfg: cfg, res: Result{MaxRate: cfg.MaxRate}}
	for _, g := range cfg.Goals {
		s.goals = append(s.goals, &bounds{goal: g})
	}
	return s, nil
}

// Next is the trial to run next, the same until Record takes its counts; false when the search is over (Result
// says whether it converged).
func (s *Search) Next() (Step, bool) {
	switch {
	case s.pending != nil:
		return *s.pending, true
	case s.done:
		return Step{}, false
	case len(s.res.Trials) >= s.cfg.MaxTrials:
		s.done = true
		return Step{}, false
	case s.contradicting != nil:
		t := s.contradicting
		s.pending = &Step{Phase: t.Phase, Rate: t.Rate, Duration: t.Duration, Repeat: true}
		return *s.pending, true
	}
	for {
		duration, width := s.cfg.phase(s.phase)
		if !s.phaseStarted {
			s.startPhase(width)
		}
		if rate, ok := s.nextRate(width); ok {
			s.pending = &Step{Phase: s.phase, Rate: rate, Duration: duration}
			return *s.pending, true
		}
		s.phase, s.phaseStarted = s.phase+1, false
		if s.phase == s.cfg.Phases {
			s.done, s.res.Complete = true, true
			return Step{}, false
		}
	}
}

// startPhase makes the previous phase's bounds the hints of the current one, measured again at its duration.
func (s *Search) startPhase(width float64) {
	for _, b := range s.goals {
		b.hintLower, b.hintUpper = 0, 0
		if b.lower != nil {
			b.hintLower = b.lower.Rate
		}
		if b.upper != nil {
			b.hintUpper = b.upper.Rate
		}
		b.lower, b.upper = nil, nil
		b.stepUp, b.stepDown, b.forwardingMissed = width, width, false
	}
	s.phaseStarted = true
}

// Record takes what the trial Next returned sent and received, and returns the trial as the history keeps it.
// The first trial of a search without a maximum rate sets it; an error ends the search.
func (s *Search) Record(c Counts) (Trial, error) {
	if s.pending == nil {
		return Trial{}, errors.New("search: Record without a trial from Next")
	}
	step := *s.pending
	s.pending = nil
	t := &Trial{Phase: step.Phase, Rate: step.Rate, Duration: step.Duration, Counts: c, LossRatio: lossRatio(c), Repeat: step.Repeat}
	if step.Rate == 0 {
		t.Rate = float64(c.Sent) / step.Duration.Seconds()
		if t.Rate <= s.cfg.MinRate {
			s.done = true
			return *t, fmt.Errorf("the sender's full rate, %.0f frames/s in trial %d, is not above the minimum rate %.0f: lower the minimum",
				t.Rate, len(s.res.Trials)+1, s.cfg.MinRate)
		}
		s.res.MaxRate = t.Rate
	}
	s.res.Trials = append(s.res.Trials, *t)
	if !t.Repeat && s.contradicts(t) {
		s.contradicting = t
		return *t, nil
	}
	s.contradicting = nil
	s.record(t)
	return *t, nil
}

// Result is what the search found so far: once Next says it is over, its outcome.
func (s *Search) Result() Result {
	res := s.res
	res.Trials = slices.Clone(s.res.Trials)
	res.Goals = s.results()
	return res
}

// within reports whether t is within b's goal.
func (b *bounds) within(t *Trial) bool { return t.LossRatio <= b.goal.LossRatio }

// contradicts reports whether t contradicts another trial of its phase: within a goal at or above a rate that
// was not, beyond it at or below a rate that was within, or losing a larger share than a higher rate did by more
// than the precision (on a path that cuts at a rate, a rate higher by the precision loses about that much more).
func (s *Search) contradicts(t *Trial) bool {
	for _, b := range s.goals {
		if b.within(t) && b.upper != nil && t.Rate >= b.upper.Rate {
			return true
		}
		if !b.within(t) && b.lower != nil && t.Rate <= b.lower.Rate {
			return true
		}
	}
	for _, u := range s.res.Trials[:len(s.res.Trials)-1] { // t is the last
		if u.Phase == t.Phase && u.Rate > t.Rate && t.LossRatio > u.LossRatio+s.cfg.Precision {
			return true
		}
	}
	return false
}

// record narrows every goal's bounds with t. A bound t contradicts is dropped: t is the newer result (a
// repeat, by the time record sees a contradiction). The goal that chose t's rate learns from how it landed.
func (s *Search) record(t *Trial) {
	for _, b := range s.goals {
		if b.within(t) {
			if b.upper != nil && t.Rate >= b.upper.Rate {
				b.upper = nil
			}
			if b.lower == nil || t.Rate > b.lower.Rate {
				b.lower = t
			}
			if b == s.chooser && s.move == moveStepUp {
				b.stepUp *= 2
			}
			continue
		}
		if b.lower != nil && t.Rate <= b.lower.Rate {
			b.lower = nil
		}
		if b.upper == nil || t.Rate < b.upper.Rate {
			b.upper = t
		}
		if b == s.chooser {
			switch s.move {
			case moveStepDown:
				b.stepDown *= 2
			case moveForwarding:
				b.forwardingMissed = true
			}
		}
	}
}

// nextRate is the rate of the next trial: the next one the first unfinished goal needs. false: every goal's
// interval is narrow enough (or pinned at the maximum or below the minimum).
func (s *Search) nextRate(width float64) (float64, bool) {
	lo := s.cfg.MinRate
	if lo == 0 {
		lo = s.res.MaxRate / 1000
	}
	for _, b := range s.goals {
		// Before the first trial without a maximum rate, hi is 0: as fast as the sender goes.
		if rate, m, ok := b.next(width, lo, s.res.MaxRate); ok {
			s.chooser, s.move = b, m
			return rate, true
		}
	}
	return 0, false
}

// next is the rate b needs measured next in a phase whose goal is width, between lo and hi, and how it chose
// it; false when b needs nothing more in this phase.
func (b *bounds) next(width, lo, hi float64) (float64, move, bool) {
	switch {
	case b.lower != nil && b.lower.Rate >= hi:
		return 0, moveOther, false // the maximum is within the goal
	case b.upper != nil && b.upper.Rate <= lo:
		return 0, moveOther, false // even the minimum is not
	case b.lower == nil && b.upper == nil:
		// A new phase: the previous one's bounds again, at this phase's duration.
		if b.hintLower > 0 {
			return b.hintLower, moveOther, true
		}
		if b.hintUpper > 0 {
			return b.hintUpper, moveOther, true
		}
		return hi, moveOther, true
	case b.lower == nil:
		// Down from the upper bound. A path that cuts at a rate forwarded about that rate in a trial that lost
		// frames: try there first, then steps.
		rate, m := b.upper.Rate*(1-math.Min(b.stepDown, 0.5)), moveStepDown
		if fwd := b.upper.forwardingRate(); !b.forwardingMissed && fwd < rate {
			rate, m = fwd, moveForwarding
		}
		if b.hintLower > rate && b.hintLower < b.upper.Rate {
			rate, m = b.hintLower, moveOther
		}
		return math.Max(rate, lo), m, true
	case b.upper == nil:
		rate, m := b.lower.Rate/(1-math.Min(b.stepUp, 0.5)), moveStepUp
		if b.hintUpper > b.lower.Rate && b.hintUpper < rate {
			rate, m = b.hintUpper, moveOther
		}
		return math.Min(rate, hi), m, true
	}
	if b.upper.Rate-b.lower.Rate <= width*b.upper.Rate {
		return 0, moveOther, false
	}
	mid := (b.lower.Rate + b.upper.Rate) / 2
	if step := b.lower.Rate / (1 - math.Min(b.stepUp, 0.5)); step < mid && b.lower.Rate >= b.upper.forwardingRate()*(1-width) {
		// The upper bound's trial forwarded no more than the lower bound: the path's ceiling is about there,
		// so the answer is likely close above the lower bound. Step up from it rather than halve the interval.
		return step, moveStepUp, true
	}
	return mid, moveOther, true
}

// results are the goals' rates: the last phase's bounds, or for a search that stopped early the latest bounds
// found (the previous phase's where the current one has none yet, unless the current one contradicts them).
func (s *Search) results() []GoalResult {
	out := make([]GoalResult, len(s.goals))
	for i, b := range s.goals {
		lower, upper := b.hintLower, b.hintUpper
		if b.lower != nil {
			lower = b.lower.Rate
		} else if b.upper != nil && lower >= b.upper.Rate {
			lower = 0
		}
		if b.upper != nil {
			upper = b.upper.Rate
		} else if b.lower != nil && upper <= b.lower.Rate {
			upper = 0
		}
		out[i] = GoalResult{Goal: b.goal, Rate: lower, Upper: upper}
	}
	return out
}
