/*
Copyright 2026 The xdpgen Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package controllers

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	xdpgenv1alpha1 "github.com/xdpgen/xdpgen/api/v1alpha1"
	"github.com/xdpgen/xdpgen/internal/search"
)

// The controller drives the search of a TrafficGenerator with spec.search: each trial is a run of the current
// generation, numbered in status.search.trial, which the agents run as they run any generation (the trial's
// rate and duration in place of the spec's). Once every node finished the trial, the controller records what
// the receivers settled, asks the search for the next trial, and writes it into the status, where the agents
// see it. The search keeps no state of its own: it is rebuilt each time from the history in the status
// (internal/search is deterministic), so a restarted manager goes on where the last one left off.

// searchConfig is the search of spec.search; the API server has checked its fields.
func searchConfig(spec *xdpgenv1alpha1.Search) (search.Config, error) {
	cfg := search.Config{MaxTrials: int(spec.MaxTrials), FinalDuration: xdpgenv1alpha1.DefaultSearchTrialDuration}
	if cfg.MaxTrials == 0 {
		cfg.MaxTrials = xdpgenv1alpha1.DefaultSearchMaxTrials
	}
	if spec.TrialDuration != nil {
		cfg.FinalDuration = spec.TrialDuration.Duration
	}
	if spec.MaxPacketsPerSecond != nil {
		cfg.MaxRate = float64(*spec.MaxPacketsPerSecond)
	}
	if spec.MinPacketsPerSecond != nil {
		cfg.MinRate = float64(*spec.MinPacketsPerSecond)
	}
	var err error
	if cfg.Precision, err = ratio("spec.search.precision", cmp.Or(spec.Precision, xdpgenv1alpha1.DefaultSearchPrecision)); err != nil {
		return cfg, err
	}
	ndr, err := ratio("spec.search.ndrLossRatio", cmp.Or(spec.NDRLossRatio, "0"))
	if err != nil {
		return cfg, err
	}
	cfg.Goals = []search.Goal{{Name: "NDR", LossRatio: ndr}}
	if spec.PDRLossRatio != "" {
		pdr, err := ratio("spec.search.pdrLossRatio", spec.PDRLossRatio)
		if err != nil {
			return cfg, err
		}
		cfg.Goals = append(cfg.Goals, search.Goal{Name: "PDR", LossRatio: pdr})
	}
	cfg, err = cfg.Validated()
	if ce := (*search.ConfigError)(nil); errors.As(err, &ce) {
		return cfg, errors.New(ce.Message("spec.search." + string(ce.Field)))
	}
	return cfg, err
}

func ratio(field, s string) (float64, error) {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%s %q: not a decimal number such as 0.005", field, s)
	}
	return v, nil
}

// replay rebuilds the search from its history, and checks that the trial the status asks for is the one the
// search asks for next.
func replay(cfg search.Config, st *xdpgenv1alpha1.SearchStatus) (*search.Search, error) {
	s, err := search.New(cfg)
	if err != nil {
		return nil, err
	}
	for _, h := range st.History {
		if _, ok := s.Next(); !ok {
			return nil, fmt.Errorf("the history has more trials (%d) than the search asks for", len(st.History))
		}
		if _, err := s.Record(search.Counts{Sent: uint64(h.SentPackets), Received: uint64(h.ReceivedPackets)}); err != nil {
			return nil, err
		}
	}
	if t := st.Trial; t != nil && (len(st.History) == 0 || t.Number > st.History[len(st.History)-1].Number) {
		step, ok := s.Next()
		if !ok || t.Duration.Duration != step.Duration || t.PacketsPerSecond != int64(math.Round(step.Rate)) {
			return nil, fmt.Errorf("trial %d (%d pps for %s) is not the trial the history leads to", t.Number, t.PacketsPerSecond, t.Duration.Duration)
		}
	}
	return s, nil
}

// searchStatusFor is the search's status after what the controller observed of the current trial: the phase
// statusFor computed for the trial's run (Completed once every node finished it, Failed when one failed or was
// lost, with why) and the trial's reports. It returns the generator's phase: the trial's while it runs,
// Running between trials, and Completed or Failed once the search is over.
func searchStatusFor(tg *xdpgenv1alpha1.TrafficGenerator, current []xdpgenv1alpha1.NodeReport, trialPhase xdpgenv1alpha1.Phase,
	why string, now metav1.Time) (*xdpgenv1alpha1.SearchStatus, xdpgenv1alpha1.Phase) {
	var st *xdpgenv1alpha1.SearchStatus
	if tg.Status.ObservedGeneration == tg.Generation && tg.Status.Search != nil {
		st = tg.Status.Search.DeepCopy()
	}
	fail := func(format string, args ...any) (*xdpgenv1alpha1.SearchStatus, xdpgenv1alpha1.Phase) {
		if st == nil {
			st = &xdpgenv1alpha1.SearchStatus{StartTime: now.DeepCopy()}
		}
		st.Phase, st.CompletionTime = xdpgenv1alpha1.SearchFailed, now.DeepCopy()
		st.Message = xdpgenv1alpha1.ShortenMessage(fmt.Sprintf(format, args...), xdpgenv1alpha1.MaxMessageLength)
		return st, xdpgenv1alpha1.PhaseFailed
	}
	if st != nil && st.Phase.Over() {
		if st.Phase == xdpgenv1alpha1.SearchFailed {
			return st, xdpgenv1alpha1.PhaseFailed
		}
		return st, xdpgenv1alpha1.PhaseCompleted
	}
	cfg, err := searchConfig(tg.Spec.Search)
	if err != nil {
		return fail("%v", err)
	}
	if st == nil || st.Trial == nil {
		st = &xdpgenv1alpha1.SearchStatus{Phase: xdpgenv1alpha1.SearchSearching, StartTime: now.DeepCopy(), MaxPacketsPerSecond: int64(cfg.MaxRate)}
		s, _ := search.New(cfg) // cfg is valid
		return nextTrial(st, s, cfg, now)
	}
	s, err := replay(cfg, st)
	if err != nil {
		return fail("cannot resume the search from status.search.history: %v", err)
	}
	switch trialPhase {
	case xdpgenv1alpha1.PhaseFailed:
		return fail("trial %d failed: %s", st.Trial.Number, why)
	case xdpgenv1alpha1.PhaseCompleted:
	default:
		return st, trialPhase
	}
	rows := trialPaths(current)
	var counts search.Counts
	for _, p := range rows {
		counts.Sent += uint64(p.sent)
		counts.Received += uint64(p.received)
	}
	if counts.Sent == 0 {
		return fail("trial %d sent nothing to the receivers: see the senders' NodeReports", st.Trial.Number)
	}
	if want := trialFrames(st.Trial, rows); float64(counts.Sent) < shortTrial*float64(want) {
		// The senders fell short: the trial was not at its rate. Run it again, as a trial of its own.
		short := fmt.Sprintf("the senders sent %d of the %d frames of trial %d (%d pps for %s)", counts.Sent, want, st.Trial.Number,
			st.Trial.PacketsPerSecond, st.Trial.Duration.Duration)
		if st.Trial.Attempt >= shortAttempts {
			return fail("%s, %d times: the nodes are too busy, or the rate is beyond them (lower spec.search.maxPacketsPerSecond)", short, shortAttempts)
		}
		retry := *st.Trial
		retry.Number, retry.Attempt, retry.StartTime = st.Trial.Number+1, max(1, st.Trial.Attempt)+1, now
		st.Trial, st.ShortTrials = &retry, st.ShortTrials+1
		st.Message = short + " (busy?): running it again as trial " + strconv.Itoa(int(retry.Number))
		return st, xdpgenv1alpha1.PhaseRunning
	}
	t, err := s.Record(counts)
	if err != nil {
		return fail("trial %d: %v", st.Trial.Number, err)
	}
	st.History = append(st.History, xdpgenv1alpha1.SearchTrialResult{Number: st.Trial.Number, Phase: int32(t.Phase),
		PacketsPerSecond: int64(math.Round(t.Rate)), Duration: metav1.Duration{Duration: t.Duration},
		SentPackets: int64(t.Sent), ReceivedPackets: int64(t.Received), LossRatio: xdpgenv1alpha1.LossRatio(int64(t.Sent-t.Received), int64(t.Sent)),
		Repeat: t.Repeat})
	st.Trials = int32(len(st.History))
	if len(st.History) == 1 {
		st.MaxPacketsPerSecond = int64(math.Round(s.Result().MaxRate))
		st.MeanFrameSize = meanFrameSize(current)
	}
	if t.Phase == cfg.Phases-1 {
		st.Paths = withTrialPaths(st.Paths, rows, t, cfg.Goals[0].LossRatio)
	}
	return nextTrial(st, s, cfg, now)
}

// A trial whose senders sent less than shortTrial of its frames (less rounding) was not at its rate: it runs
// again, up to shortAttempts times in all, as xdpgen search's trials do.
const (
	shortTrial    = 0.999
	shortAttempts = 3
)

// nextTrial asks the search for its next trial and puts it in st, or, when the search is over, its result.
func nextTrial(st *xdpgenv1alpha1.SearchStatus, s *search.Search, cfg search.Config, now metav1.Time) (*xdpgenv1alpha1.SearchStatus, xdpgenv1alpha1.Phase) {
	res := s.Result()
	st.NDR, st.PDR = nil, nil
	if len(res.Trials) > 0 {
		for i, g := range res.Goals {
			r := &xdpgenv1alpha1.SearchRate{LossRatio: strconv.FormatFloat(g.LossRatio, 'g', -1, 64), PacketsPerSecond: int64(math.Round(g.Rate)),
				UpperPacketsPerSecond: int64(math.Round(g.Upper))}
			r.BitsPerSecond = r.PacketsPerSecond * st.MeanFrameSize * 8
			if i == 0 {
				st.NDR = r
			} else {
				st.PDR = r
			}
		}
	}
	step, ok := s.Next()
	if ok {
		st.Phase = xdpgenv1alpha1.SearchSearching
		number := int32(1)
		if st.Trial != nil {
			number = st.Trial.Number + 1
		}
		st.Trial = &xdpgenv1alpha1.SearchTrial{Number: number, Attempt: 1, Phase: int32(step.Phase),
			PacketsPerSecond: int64(math.Round(step.Rate)), Duration: metav1.Duration{Duration: step.Duration}, Repeat: step.Repeat,
			StartTime: now}
		st.Message = fmt.Sprintf("trial %d of at most %d: phase %d of %d, %s for %s", st.Trial.Number, cfg.MaxTrials, step.Phase+1,
			cfg.Phases, trialRate(st.Trial.PacketsPerSecond), step.Duration)
		if len(res.Trials) == 0 {
			return st, xdpgenv1alpha1.PhasePending // until the first trial's nodes send
		}
		return st, xdpgenv1alpha1.PhaseRunning
	}
	st.Phase, st.CompletionTime = xdpgenv1alpha1.SearchCompleted, now.DeepCopy()
	if !s.Result().Complete {
		st.Phase = xdpgenv1alpha1.SearchIncomplete
	}
	st.Message = searchResultNote(st, cfg)
	return st, xdpgenv1alpha1.PhaseCompleted
}

func trialRate(pps int64) string {
	if pps == 0 {
		return "as fast as the senders go"
	}
	return withPrefix(pps, "pps")
}

// searchResultNote says what a search that is over found, in how many trials and how long.
func searchResultNote(st *xdpgenv1alpha1.SearchStatus, cfg search.Config) string {
	rate := func(name string, r *xdpgenv1alpha1.SearchRate) string {
		if r == nil {
			return ""
		}
		return fmt.Sprintf("%s (loss ratio %s) %s, %s; ", name, r.LossRatio, withPrefix(r.PacketsPerSecond, "pps"), withPrefix(r.BitsPerSecond, "bit/s"))
	}
	took := ""
	if st.StartTime != nil && st.CompletionTime != nil {
		took = " in " + st.CompletionTime.Sub(st.StartTime.Time).Round(time.Second).String()
	}
	note := fmt.Sprintf("%s%s%d trials%s", rate("NDR", st.NDR), rate("PDR", st.PDR), st.Trials, took)
	if st.Phase == xdpgenv1alpha1.SearchIncomplete {
		note += fmt.Sprintf("; did not converge within %d trials (spec.search.maxTrials): the rates are the best bounds found", cfg.MaxTrials)
	}
	return note
}

// trialFrames is how many frames the senders of rows send in a trial at a rate, as the agents take their
// shares; 0 for a trial as fast as they go.
func trialFrames(t *xdpgenv1alpha1.SearchTrial, rows []trialPath) int64 {
	senders := map[string]bool{}
	for _, r := range rows {
		senders[r.sender] = true
	}
	_, packets := t.SenderShare(len(senders))
	return int64(len(senders)) * packets
}

// trialPath is what one path carried in a trial, as its receiver settled it.
type trialPath struct {
	sender, receiver string
	sent, received   int64
}

// trialPaths are the paths the receivers settled in the trial's reports.
func trialPaths(current []xdpgenv1alpha1.NodeReport) []trialPath {
	var rows []trialPath
	for _, r := range current {
		for _, p := range r.Status.Received {
			rows = append(rows, trialPath{sender: p.Sender, receiver: p.Receiver,
				sent: max(p.SentPackets, p.ReceivedPackets), received: p.ReceivedPackets})
		}
	}
	return rows
}

// meanFrameSize is the senders' mean frame size in the trial's reports.
func meanFrameSize(current []xdpgenv1alpha1.NodeReport) int64 {
	var packets, bytes int64
	for _, r := range current {
		packets += r.Status.Packets
		bytes += r.Status.Bytes
	}
	if packets == 0 {
		return 0
	}
	return int64(math.Round(float64(bytes) / float64(packets)))
}

// withTrialPaths adds a trial of the last phase to each path's record: the highest rate at which it lost at
// most the NDR's loss ratio, and the lowest generator rate at which it lost more. The paths that lost first come
// first, then the others by name, at most MaxSearchPaths.
func withTrialPaths(paths []xdpgenv1alpha1.SearchPath, rows []trialPath, t search.Trial, ndrLoss float64) []xdpgenv1alpha1.SearchPath {
	for _, row := range rows {
		i := slices.IndexFunc(paths, func(p xdpgenv1alpha1.SearchPath) bool { return p.Sender == row.sender && p.Receiver == row.receiver })
		if i < 0 {
			paths = append(paths, xdpgenv1alpha1.SearchPath{Sender: row.sender, Receiver: row.receiver})
			i = len(paths) - 1
		}
		p := &paths[i]
		lost := row.sent - row.received
		if row.sent > 0 && float64(lost)/float64(row.sent) > ndrLoss {
			if rate := int64(math.Round(t.Rate)); p.FirstLossPacketsPerSecond == 0 || rate < p.FirstLossPacketsPerSecond {
				p.FirstLossPacketsPerSecond, p.FirstLossRatio = rate, xdpgenv1alpha1.LossRatio(lost, row.sent)
			}
			continue
		}
		p.LosslessPacketsPerSecond = max(p.LosslessPacketsPerSecond, int64(math.Round(float64(row.sent)/t.Duration.Seconds())))
	}
	slices.SortFunc(paths, func(a, b xdpgenv1alpha1.SearchPath) int {
		lostA, lostB := a.FirstLossPacketsPerSecond > 0, b.FirstLossPacketsPerSecond > 0
		switch {
		case lostA && !lostB:
			return -1
		case lostB && !lostA:
			return 1
		}
		return cmp.Or(cmp.Compare(a.FirstLossPacketsPerSecond, b.FirstLossPacketsPerSecond), cmp.Compare(a.Sender, b.Sender),
			cmp.Compare(a.Receiver, b.Receiver))
	})
	return paths[:min(len(paths), xdpgenv1alpha1.MaxSearchPaths)]
}
