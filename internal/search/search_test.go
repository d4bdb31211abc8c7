package search

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// simulatedPath forwards at most capacity frames per second (a token bucket without a burst): a trial at a
// higher rate loses what is above it. jitter moves each trial's capacity by up to that share either way;
// transient is the probability that a trial also loses transientFrames frames whatever its rate. With
// excessLost the path loses only that share of what is sent above its capacity (a policer that lets some
// through), so that a loss ratio goal above 0 lies well above the capacity.
type simulatedPath struct {
	capacity, senderMax float64
	excessLost          float64
	jitter, transient   float64
	transientFrames     uint64
	rng                 *rand.Rand
	// calls counts the trials; time the trial time they add up to.
	calls int
	time  time.Duration
}

func (p *simulatedPath) trial(_ context.Context, rate float64, d time.Duration) (Counts, error) {
	p.calls++
	p.time += d
	if rate == 0 || rate > p.senderMax {
		rate = p.senderMax
	}
	capacity := p.capacity
	if p.jitter > 0 {
		capacity *= 1 + p.jitter*(2*p.rng.Float64()-1)
	}
	sent := uint64(rate * d.Seconds())
	received := min(sent, uint64(capacity*d.Seconds()))
	if p.excessLost > 0 {
		received += uint64(float64(sent-received) * (1 - p.excessLost))
	}
	if p.transient > 0 && p.rng.Float64() < p.transient {
		received -= min(received, p.transientFrames)
	}
	return Counts{Sent: sent, Received: received}, nil
}

var pdr = Goal{Name: "PDR", LossRatio: 0.005}

// within reports whether got is in [want*(1-tolerance), want*(1+tolerance)].
func within(got, want, tolerance float64) bool {
	return got >= want*(1-tolerance) && got <= want*(1+tolerance)
}

// TestDeterministicPath searches paths of known capacity, from well below the minimum rate to above the
// maximum: NDR is at most the capacity and within the precision of it, PDR (0.5%) at most capacity/0.995 and
// within the precision of that, with the bound on trials kept and the result backed by the final trials.
func TestDeterministicPath(t *testing.T) {
	const maxRate, precision = 1e6, 0.01
	for _, tc := range []struct {
		name     string
		capacity float64
		// maxRate 0: the sender's own (senderMax).
		maxRate, senderMax float64
		// wantNDR and wantPDR are the true rates; 0: the minimum rate is already beyond the goal.
		wantNDR, wantPDR float64
	}{
		{name: "no bottleneck", capacity: 2e6, maxRate: maxRate, senderMax: 3e6, wantNDR: maxRate, wantPDR: maxRate},
		{name: "just below the maximum", capacity: 0.995 * maxRate, maxRate: maxRate, senderMax: 3e6, wantNDR: 0.995 * maxRate, wantPDR: maxRate},
		{name: "half", capacity: 5e5, maxRate: maxRate, senderMax: 3e6, wantNDR: 5e5, wantPDR: 5e5 / 0.995},
		{name: "odd", capacity: 123_457, maxRate: maxRate, senderMax: 3e6, wantNDR: 123_457, wantPDR: 123_457 / 0.995},
		{name: "near the minimum", capacity: 1500, maxRate: maxRate, senderMax: 3e6, wantNDR: 1500, wantPDR: 1500 / 0.995},
		{name: "below the minimum", capacity: 500, maxRate: maxRate, senderMax: 3e6},
		{name: "the sender's maximum", capacity: 250_000, senderMax: 800_000, wantNDR: 250_000, wantPDR: 250_000 / 0.995},
		{name: "the sender's maximum, no bottleneck", capacity: 1e9, senderMax: 800_000, wantNDR: 800_000, wantPDR: 800_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &simulatedPath{capacity: tc.capacity, senderMax: tc.senderMax}
			cfg := Config{Goals: []Goal{NDR, pdr}, MaxRate: tc.maxRate, MinRate: 1000, Precision: precision,
				FinalDuration: 10 * time.Second, InitialDuration: time.Second}
			res, err := Run(context.Background(), cfg, p.trial, nil)
			if err != nil {
				t.Fatal(err)
			}
			logTrials(t, res)
			if !res.Complete {
				t.Fatalf("search incomplete after %d trials", len(res.Trials))
			}
			// The bound: for each of 3 phases and 2 goals, 2 trials that measure the previous bounds again and
			// log2(1/precision) of bisection in the first phase (from the maximum down), 2 in the others.
			if n := len(res.Trials); n > maxTrialsDeterministic {
				t.Fatalf("%d trials, want at most %d", n, maxTrialsDeterministic)
			}
			for i, want := range []float64{tc.wantNDR, tc.wantPDR} {
				g := res.Goals[i]
				if want == 0 {
					if g.Rate != 0 || g.Upper != cfg.MinRate {
						t.Fatalf("%s %.0f (upper %.0f), want none: the minimum rate %.0f loses more", g.Name, g.Rate, g.Upper, cfg.MinRate)
					}
					continue
				}
				// The simulated path counts whole frames: a rate a fraction of a frame above the capacity
				// loses nothing in 10s.
				if g.Rate > want+0.1 || g.Rate < want*(1-precision) {
					t.Fatalf("%s %.0f, want within %.0f%% below %.0f", g.Name, g.Rate, 100*precision, want)
				}
				if g.Upper != 0 && (g.Upper-g.Rate)/g.Upper > precision {
					t.Fatalf("%s in [%.0f, %.0f], want it narrower than %.0f%%", g.Name, g.Rate, g.Upper, 100*precision)
				}
				requireFinalTrials(t, res, g, cfg.FinalDuration)
			}
		})
	}
}

// maxTrialsDeterministic is the most trials a search of a deterministic path may take, with 2 goals, 3 phases
// and 1% precision: the first trial and the one at the forwarding rate, about 4 steps from there to each goal's
// bounds, and in each later phase 2 trials per goal measuring the bounds again and one bisection.
const maxTrialsDeterministic = 2 + 2*4 + 2*2*3

// requireFinalTrials checks that g's rate and upper bound are those of trials at the final duration within and
// beyond its goal.
func requireFinalTrials(t *testing.T, res Result, g GoalResult, final time.Duration) {
	t.Helper()
	var lowerSeen, upperSeen bool
	for _, tr := range res.Trials {
		if tr.Duration != final {
			continue
		}
		lowerSeen = lowerSeen || (tr.Rate == g.Rate && tr.LossRatio <= g.LossRatio)
		upperSeen = upperSeen || (tr.Rate == g.Upper && tr.LossRatio > g.LossRatio)
	}
	if !lowerSeen || (g.Upper != 0 && !upperSeen) {
		t.Fatalf("%s [%.0f, %.0f] not backed by trials of %s within and beyond %g", g.Name, g.Rate, g.Upper, final, g.LossRatio)
	}
}

func logTrials(t *testing.T, res Result) {
	t.Helper()
	for i, tr := range res.Trials {
		t.Logf("trial %2d phase %d %6s rate %10.0f sent %10d received %10d loss %.5f repeat %v",
			i+1, tr.Phase, tr.Duration, tr.Rate, tr.Sent, tr.Received, tr.LossRatio, tr.Repeat)
	}
	t.Logf("result %+v", res.Goals)
}

// TestNoisyPath searches a path whose capacity moves by up to 0.5% from trial to trial and where one trial in
// ten loses a few frames whatever its rate, with a hundred seeds: every search
// converges within its trial bound, the contradictions the noise causes are repeated, and NDR is within 2% of the
// capacity (the jitter, the precision) in nearly every search and never off by more than 10%.
func TestNoisyPath(t *testing.T) {
	const capacity, seeds = 200_000, 100
	var off2, repeats, most int
	for seed := range uint64(seeds) {
		p := &simulatedPath{capacity: capacity, senderMax: 2e6, jitter: 0.005, transient: 0.1, transientFrames: 5,
			rng: rand.New(rand.NewPCG(seed, 1))}
		cfg := Config{Goals: []Goal{NDR, pdr}, MaxRate: 1e6, Precision: 0.01, FinalDuration: 10 * time.Second, MaxTrials: 40}
		res, err := Run(context.Background(), cfg, p.trial, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Complete || p.calls != len(res.Trials) {
			logTrials(t, res)
			t.Fatalf("seed %d: complete %v after %d trials recorded, %d run: want a complete search within %d", seed, res.Complete, len(res.Trials), p.calls, cfg.MaxTrials)
		}
		most = max(most, len(res.Trials))
		for _, tr := range res.Trials {
			if tr.Repeat {
				repeats++
			}
		}
		ndr, pdrRate := res.Goals[0].Rate, res.Goals[1].Rate
		if !within(ndr, capacity, 0.10) || pdrRate < ndr {
			logTrials(t, res)
			t.Fatalf("seed %d: NDR %.0f, PDR %.0f: want NDR within 10%% of %d and PDR at least NDR", seed, ndr, pdrRate, capacity)
		}
		if !within(ndr, capacity, 0.02) {
			off2++
			t.Logf("seed %d: NDR %.0f (%.1f%% off) in %d trials, complete %v", seed, ndr, 100*(ndr/capacity-1), len(res.Trials), res.Complete)
		}
	}
	t.Logf("%d of %d searches more than 2%% off; %d repeated trials; at most %d trials in a search", off2, seeds, repeats, most)
	if off2 > seeds/10 {
		t.Fatalf("%d of %d searches put NDR more than 2%% from the capacity, want at most %d", off2, seeds, seeds/10)
	}
	if repeats == 0 {
		t.Fatal("no trial was repeated: the transient losses should have contradicted some")
	}
}

// TestRepeatsAContradiction: on a path that loses a tenth of what exceeds its capacity (PDR is 5% above NDR),
// a trial for PDR in the final phase loses nothing once, above a rate where NDR's upper bound lost frames. The
// search repeats that trial, the repeat (which loses frames) stands, and neither goal moves.
func TestRepeatsAContradiction(t *testing.T) {
	const capacity = 100_000
	p := &simulatedPath{capacity: capacity, senderMax: 1e6, excessLost: 0.1}
	var fluke *Trial
	cfg := Config{Goals: []Goal{NDR, pdr}, MaxRate: 1e6, FinalDuration: 4 * time.Second, InitialDuration: time.Second, Precision: 0.01}
	var res Result
	trial := func(ctx context.Context, rate float64, d time.Duration) (Counts, error) {
		c, err := p.trial(ctx, rate, d)
		if fluke == nil && d == cfg.FinalDuration && c.Received < c.Sent && hasFinalUpperBelow(res.Trials, rate, cfg.FinalDuration) {
			fluke = &Trial{Rate: rate}
			c.Received = c.Sent
		}
		return c, err
	}
	res, err := Run(context.Background(), cfg, trial, func(tr Trial) { res.Trials = append(res.Trials, tr) })
	if err != nil {
		t.Fatal(err)
	}
	logTrials(t, res)
	if fluke == nil {
		t.Fatal("the script never made a trial lose nothing above a lossy one")
	}
	requireRepeat(t, res, fluke.Rate, func(tr Trial) bool { return tr.LossRatio > 0 })
	requireNear(t, res.Goals[0].Rate, capacity, 0.01)
	requireNear(t, res.Goals[1].Rate, capacity/(1-0.005/0.1), 0.01)
}

// hasFinalUpperBelow reports whether a trial of the final duration below rate lost frames.
func hasFinalUpperBelow(trials []Trial, rate float64, final time.Duration) bool {
	for _, tr := range trials {
		if tr.Duration == final && tr.Rate < rate && tr.LossRatio > 0 {
			return true
		}
	}
	return false
}

// requireRepeat checks that the trial at rate was repeated, and that the repeat's result is what want says.
func requireRepeat(t *testing.T, res Result, rate float64, want func(Trial) bool) {
	t.Helper()
	for i, tr := range res.Trials {
		if tr.Repeat {
			if prev := res.Trials[i-1]; prev.Rate != rate || tr.Rate != rate || !want(tr) {
				t.Fatalf("trial %d repeats %+v as %+v, want the trial at %.0f repeated", i+1, prev, tr, rate)
			}
			return
		}
	}
	t.Fatalf("no trial was repeated, want the one at %.0f", rate)
}

// requireNear checks that got is at most want and at most precision below it.
func requireNear(t *testing.T, got, want, precision float64) {
	t.Helper()
	if got > want+0.5 || got < want*(1-precision) {
		t.Fatalf("rate %.0f, want at most %.0f and within %g%% of it", got, want, 100*precision)
	}
}

// TestRepeatsALossSpike: in the final phase, a trial below a rate that lost a little loses a fifth of its frames
// once (the host was busy, say): a lower rate losing far more than a higher one. The search repeats it, the
// repeat (which loses what the path loses) stands, and NDR is not pulled down.
func TestRepeatsALossSpike(t *testing.T) {
	const capacity = 100_000
	p := &simulatedPath{capacity: capacity, senderMax: 1e6}
	cfg := Config{MaxRate: 1e6, FinalDuration: 4 * time.Second, InitialDuration: time.Second, Precision: 0.01}
	var res Result
	var spiked float64
	trial := func(ctx context.Context, rate float64, d time.Duration) (Counts, error) {
		c, err := p.trial(ctx, rate, d)
		if spiked == 0 && d == cfg.FinalDuration && hasFinalUpperAbove(res.Trials, rate, cfg.FinalDuration) {
			spiked = rate
			c.Received -= c.Sent / 5
		}
		return c, err
	}
	res, err := Run(context.Background(), cfg, trial, func(tr Trial) { res.Trials = append(res.Trials, tr) })
	if err != nil {
		t.Fatal(err)
	}
	logTrials(t, res)
	if spiked == 0 {
		t.Fatal("the script never spiked a trial's loss")
	}
	requireRepeat(t, res, spiked, func(tr Trial) bool { return tr.LossRatio < 0.01 })
	requireNear(t, res.Goals[0].Rate, capacity, 0.01)
}

// hasFinalUpperAbove reports whether a trial of the final duration above rate lost frames.
func hasFinalUpperAbove(trials []Trial, rate float64, final time.Duration) bool {
	for _, tr := range trials {
		if tr.Duration == final && tr.Rate > rate && tr.LossRatio > 0 {
			return true
		}
	}
	return false
}

// TestContradictionConfirmed: the path's capacity grows in the final phase, after NDR's upper bound lost frames
// at a rate that now passes. A trial above that bound loses nothing, its repeat confirms it, the contradicted
// bound is dropped, and the search follows the path up to its new capacity.
func TestContradictionConfirmed(t *testing.T) {
	p := &simulatedPath{capacity: 100_000, senderMax: 1e6, excessLost: 0.1}
	cfg := Config{Goals: []Goal{NDR, pdr}, MaxRate: 1e6, FinalDuration: 4 * time.Second, InitialDuration: time.Second, Precision: 0.01}
	var res Result
	grown := false
	trial := func(ctx context.Context, rate float64, d time.Duration) (Counts, error) {
		if !grown && d == cfg.FinalDuration && hasFinalUpperBelow(res.Trials, rate, cfg.FinalDuration) {
			grown, p.capacity = true, 120_000
		}
		return p.trial(ctx, rate, d)
	}
	res, err := Run(context.Background(), cfg, trial, func(tr Trial) { res.Trials = append(res.Trials, tr) })
	if err != nil {
		t.Fatal(err)
	}
	logTrials(t, res)
	if !grown {
		t.Fatal("the script never grew the capacity")
	}
	var repeated bool
	for _, tr := range res.Trials {
		repeated = repeated || tr.Repeat
	}
	if !repeated {
		t.Fatal("no trial was repeated")
	}
	requireNear(t, res.Goals[0].Rate, 120_000, 0.01)
	requireNear(t, res.Goals[1].Rate, 120_000/(1-0.005/0.1), 0.01)
}

// TestMaxTrials stops a search at its bound: exactly MaxTrials trials, not complete, and the best bounds so far.
func TestMaxTrials(t *testing.T) {
	p := &simulatedPath{capacity: 300_000, senderMax: 1e6}
	cfg := Config{Goals: []Goal{NDR, pdr}, MaxRate: 1e6, Precision: 0.001, FinalDuration: time.Second, MaxTrials: 6}
	res, err := Run(context.Background(), cfg, p.trial, nil)
	if err != nil {
		t.Fatal(err)
	}
	logTrials(t, res)
	if res.Complete || len(res.Trials) != 6 || p.calls != 6 {
		t.Fatalf("complete %v after %d trials (%d run), want an incomplete search of 6", res.Complete, len(res.Trials), p.calls)
	}
	for _, g := range res.Goals {
		if g.Rate == 0 || g.Rate > 300_000/0.995 || (g.Upper != 0 && g.Upper <= g.Rate) {
			t.Fatalf("%s [%.0f, %.0f], want the bounds so far around 300000", g.Name, g.Rate, g.Upper)
		}
	}
}

// TestOnTrialAndCancel: onTrial sees each trial as it ends; a cancelled context stops the search with the
// trials so far and the context's error.
func TestOnTrialAndCancel(t *testing.T) {
	p := &simulatedPath{capacity: 300_000, senderMax: 1e6}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen []Trial
	res, err := Run(ctx, Config{MaxRate: 1e6, FinalDuration: time.Second}, p.trial, func(tr Trial) {
		seen = append(seen, tr)
		if len(seen) == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if res.Complete || len(res.Trials) != 3 || !cmp.Equal(seen, res.Trials) {
		t.Fatalf("complete %v, %d trials, onTrial saw %d: want 3 of each, the same", res.Complete, len(res.Trials), len(seen))
	}
}

// TestTrialError: a failing trial ends the search with its error, named.
func TestTrialError(t *testing.T) {
	boom := errors.New("receiver unreachable")
	_, err := Run(context.Background(), Config{MaxRate: 1000}, func(context.Context, float64, time.Duration) (Counts, error) {
		return Counts{}, boom
	}, nil)
	if !errors.Is(err, boom) || err.Error() != "trial 1 at 1000 frames/s for 1s: receiver unreachable" {
		t.Fatalf("error %v", err)
	}
}

func TestPhases(t *testing.T) {
	cfg, err := Config{FinalDuration: 8 * time.Second, InitialDuration: 500 * time.Millisecond, Phases: 5, Precision: 0.005}.Validated()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for i := range cfg.Phases {
		d, w := cfg.phase(i)
		got = append(got, fmt.Sprintf("%s %.3g", d, w))
	}
	want := []string{"500ms 0.08", "1s 0.04", "2s 0.02", "4s 0.01", "8s 0.005"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("phases (-want +got):\n%s", diff)
	}
}

func TestValidated(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "defaults", cfg: Config{}},
		{name: "bad goals", cfg: Config{Goals: []Goal{{Name: "NDR"}, {Name: "NDR", LossRatio: 1}}},
			want: []string{"goals 1: a loss ratio is at least 0 and below 1 (0.005 is 0.5%)", "goals NDR: give each goal a name of its own (NDR, PDR)"}},
		{name: "rates", cfg: Config{MaxRate: 1000, MinRate: 1000},
			want: []string{"minRate 1000: give a positive rate below the maximum rate (1000)"}},
		{name: "precision", cfg: Config{Precision: 0.5},
			want: []string{"precision 0.5: give a relative width above 0 and below 0.5 (0.01 is 1%)"}},
		{name: "durations", cfg: Config{FinalDuration: time.Second, InitialDuration: 2 * time.Second},
			want: []string{"initialDuration 2s: give at least 1ms and at most the final duration (1s)"}},
		{name: "phases and trials", cfg: Config{Phases: 11, MaxTrials: -1},
			want: []string{"phases 11: give 1 to 10 phases", "maxTrials -1: give at least 1 trial"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cfg.Validated()
			var got []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					got = append(got, e.Error())
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("errors (-want +got):\n%s", diff)
			}
		})
	}
}

// TestReplay feeds the history of finished searches to new Searches, one recorded trial at a time: each asks for
// exactly the trial the history holds next (phase, rate, duration, repeat), and ends with the same result, so a
// driver that keeps only the history resumes a search where it left off.
func TestReplay(t *testing.T) {
	for seed := range uint64(20) {
		p := &simulatedPath{capacity: 150_000, senderMax: 900_000, jitter: 0.005, transient: 0.1, transientFrames: 5,
			rng: rand.New(rand.NewPCG(seed, 2))}
		cfg := Config{Goals: []Goal{NDR, pdr}, Precision: 0.01, FinalDuration: 4 * time.Second}
		want, err := Run(context.Background(), cfg, p.trial, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i, tr := range want.Trials {
			step, ok := s.Next()
			if again, _ := s.Next(); again != step {
				t.Fatalf("seed %d trial %d: Next said %+v, then %+v before Record", seed, i+1, step, again)
			}
			rate := tr.Rate
			if i == 0 {
				rate = 0 // the first trial ran as fast as the sender went
			}
			if wantStep := (Step{Phase: tr.Phase, Rate: rate, Duration: tr.Duration, Repeat: tr.Repeat}); !ok || step != wantStep {
				t.Fatalf("seed %d trial %d: Next says %+v (%v), the history %+v", seed, i+1, step, ok, wantStep)
			}
			if _, err := s.Record(tr.Counts); err != nil {
				t.Fatal(err)
			}
		}
		if step, ok := s.Next(); ok {
			t.Fatalf("seed %d: after the history Next says %+v, want the search over", seed, step)
		}
		if diff := cmp.Diff(want, s.Result()); diff != "" {
			t.Fatalf("seed %d: replayed result (-run +replay):\n%s", seed, diff)
		}
	}
}

func TestRecordWithoutNext(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Record(Counts{Sent: 1}); err == nil {
		t.Fatal("Record before Next took counts")
	}
}
