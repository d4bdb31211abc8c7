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

package v1alpha1

import (
	"math"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Search makes a TrafficGenerator with receivers search for the highest rate its paths carry within a loss ratio
// instead of sending at one rate: the Non-Drop Rate (NDR, no loss, or at most ndrLossRatio) and optionally the
// Partial-Drop Rate (PDR, at most pdrLossRatio), as RFC 2544's throughput test and MLRsearch (RFC 9971) measure
// them. The controller runs the search as a series of trials: in each, every sender sends its share of the
// trial's rate, spread over the receivers as a run with receivers does, for the trial's duration; the receivers
// settle what arrived, and the next trial's rate follows from the results. The trials start with one at
// maxPacketsPerSecond (or as fast as the senders go), then narrow each goal's interval by bisection in three
// phases of growing trial duration (from a tenth of trialDuration to trialDuration); only the last phase's
// trials decide the result, and a trial that contradicts another of its phase is repeated once.
//
// It is one search for the whole generator: every trial loads every path at once, as the generator's traffic
// does, and a trial is within a goal when all paths together lost at most its loss ratio. NDR and PDR are thus
// the highest rates the generator's paths carry together. Each path's own loss in the same trials is kept in
// status.search.paths: the highest rate at which it lost nothing and the lowest generator rate at which it did
// (the paths that lost first are the bottlenecks). Searching each path alone would need a trial per path and
// would miss what the paths share (a switch, a node's CPU).
// +kubebuilder:validation:XValidation:rule="!has(self.pdrLossRatio) || !has(self.ndrLossRatio) || double(self.pdrLossRatio) > double(self.ndrLossRatio)",message="search.pdrLossRatio must be above search.ndrLossRatio: raise pdrLossRatio (such as 0.005 for 0.5%) or remove it for NDR alone",fieldPath=".pdrLossRatio"
// +kubebuilder:validation:XValidation:rule="!has(self.minPacketsPerSecond) || !has(self.maxPacketsPerSecond) || self.minPacketsPerSecond < self.maxPacketsPerSecond",message="search.minPacketsPerSecond must be below search.maxPacketsPerSecond: lower the minimum or raise the maximum",fieldPath=".minPacketsPerSecond"
type Search struct {
	// TrialDuration is how long each of the last phase's trials sends, those that decide the result (a Go
	// duration from 1s to 1h). The first phase's trials take a tenth of it. Each trial also waits for the
	// receivers' drain time and for the agents to set up and report, a few seconds.
	// +optional
	// +kubebuilder:default="10s"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=32
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="search.trialDuration must be a Go duration from 1s to 1h, such as 10s"
	TrialDuration *metav1.Duration `json:"trialDuration,omitempty"`

	// NDRLossRatio is the share of the frames sent that a trial may lose and still count for the NDR, as a
	// decimal below 1. Left out: 0 (no frame lost).
	// +optional
	// +kubebuilder:default="0"
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+(\\\\.[0-9]+)?$') && double(self) < 1.0",message="search.ndrLossRatio must be a decimal from 0 to below 1, such as 0 or 0.0001"
	NDRLossRatio string `json:"ndrLossRatio,omitempty"`

	// PDRLossRatio is the share of the frames sent that a trial may lose and still count for the PDR, as a
	// decimal below 1, such as 0.005 for 0.5%. Left out: no PDR is searched.
	// +optional
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+(\\\\.[0-9]+)?$') && double(self) < 1.0",message="search.pdrLossRatio must be a decimal above 0 and below 1, such as 0.005 for 0.5%"
	PDRLossRatio string `json:"pdrLossRatio,omitempty"`

	// MinPacketsPerSecond is the lowest rate tried, of the whole generator (all senders together): a goal that
	// even this rate misses is reported as 0. Left out: a thousandth of the maximum.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MinPacketsPerSecond *int64 `json:"minPacketsPerSecond,omitempty"`

	// MaxPacketsPerSecond is the first trial's rate and the highest one tried, of the whole generator. Left out,
	// the first trial runs as fast as the senders go, and what they sent is the maximum.
	// +optional
	// +kubebuilder:validation:Minimum=1
	MaxPacketsPerSecond *int64 `json:"maxPacketsPerSecond,omitempty"`

	// Precision is how narrow each goal's interval gets before the search stops: (upper-lower)/upper, a decimal
	// above 0 and below 0.5. Left out: 0.01 (1%).
	// +optional
	// +kubebuilder:default="0.01"
	// +kubebuilder:validation:MaxLength=16
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9]+(\\\\.[0-9]+)?$') && double(self) > 0.0 && double(self) < 0.5",message="search.precision must be a decimal above 0 and below 0.5, such as 0.01 for 1%"
	Precision string `json:"precision,omitempty"`

	// MaxTrials bounds the search: one that has not converged by then stops with the bounds it found (phase
	// Incomplete). Searches usually take 10 to 25 trials.
	// +optional
	// +kubebuilder:default=60
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxTrials int32 `json:"maxTrials,omitempty"`
}

// Defaults of spec.search for a spec the API server did not default (its markers say the same).
const (
	DefaultSearchTrialDuration = 10 * time.Second
	DefaultSearchPrecision     = "0.01"
	DefaultSearchMaxTrials     = 60
)

// MaxSearchTrials bounds spec.search.maxTrials, and so status.search.history: the whole history of a search
// always fits in its status, which is all the controller needs to resume the search after a restart.
const MaxSearchTrials = 100

// MaxSearchPaths bounds status.search.paths.
const MaxSearchPaths = 100

// SearchPhase is where a search stands.
// +kubebuilder:validation:Enum=Searching;Completed;Incomplete;Failed
type SearchPhase string

const (
	// SearchSearching: trials are running.
	SearchSearching SearchPhase = "Searching"
	// SearchCompleted: every goal's interval is narrow enough (or the goal is at the maximum or below the
	// minimum rate): ndr and pdr are the result.
	SearchCompleted SearchPhase = "Completed"
	// SearchIncomplete: the search stopped at spec.search.maxTrials before converging; ndr and pdr are the best
	// bounds found, maybe from shorter trials.
	SearchIncomplete SearchPhase = "Incomplete"
	// SearchFailed: a trial failed (a node failed or was lost); the message says why.
	SearchFailed SearchPhase = "Failed"
)

// Event reasons of a search.
const (
	ReasonSearchCompleted  = "SearchCompleted"
	ReasonSearchIncomplete = "SearchIncomplete"
	ReasonSearchFailed     = "SearchFailed"
)

// Over reports whether a search in this phase runs no more trials.
func (p SearchPhase) Over() bool {
	return p == SearchCompleted || p == SearchIncomplete || p == SearchFailed
}

// SearchTrial is the trial the agents run now: each run of the generator's current generation is one trial.
type SearchTrial struct {
	// Number counts the trials run from 1, those run again included. The agents' NodeReports carry it
	// (status.trial), and their frames a generator id of the trial's own, so that each trial is accounted apart.
	Number int32 `json:"number"`
	// Attempt is 1, or 2 and 3 for a trial run again because its senders fell short of its frames (a node too
	// busy to send them within three times the trial's duration): such a trial would not be at its rate.
	// +optional
	Attempt int32 `json:"attempt,omitempty"`
	// Phase is the search phase the trial belongs to (0 is the first).
	Phase int32 `json:"phase"`
	// PacketsPerSecond is the trial's rate, of all senders together: each sends its share (this over the number
	// of senders). 0: as fast as the senders go (the first trial without spec.search.maxPacketsPerSecond).
	PacketsPerSecond int64 `json:"packetsPerSecond"`
	// Duration is how long the senders send.
	Duration metav1.Duration `json:"duration"`
	// Repeat says the trial repeats the one before it, whose result contradicted another trial of its phase.
	// +optional
	Repeat bool `json:"repeat,omitempty"`
	// StartTime is when the controller asked for the trial: a node that reports nothing for the trial for the
	// node-lost timeout after it is lost.
	StartTime metav1.Time `json:"startTime"`
}

// SearchTrialResult is one finished trial: what all paths together sent and received.
type SearchTrialResult struct {
	// Number is the trial's status.search.trial.number (a trial run again keeps the number of its last run).
	Number int32 `json:"number"`
	Phase  int32 `json:"phase"`
	// PacketsPerSecond is the rate offered, of all senders together: for a first trial as fast as the senders
	// go, the rate they sent at.
	PacketsPerSecond int64           `json:"packetsPerSecond"`
	Duration         metav1.Duration `json:"duration"`
	// SentPackets and ReceivedPackets sum every path, as the receivers settled them.
	SentPackets     int64 `json:"sentPackets"`
	ReceivedPackets int64 `json:"receivedPackets"`
	// LossRatio is (sent-received)/sent, as a decimal such as 0.0012.
	LossRatio string `json:"lossRatio"`
	// +optional
	Repeat bool `json:"repeat,omitempty"`
}

// SearchRate is what a search found for one goal, for the whole generator.
type SearchRate struct {
	// LossRatio is the goal: the share of the frames a trial may lose.
	LossRatio string `json:"lossRatio"`
	// PacketsPerSecond is the highest rate whose trial (of the last phase, for a complete search) lost at most
	// LossRatio, of all senders together; 0 when even the minimum rate lost more.
	PacketsPerSecond int64 `json:"packetsPerSecond"`
	// BitsPerSecond is that rate in bits per second of Ethernet frames (without FCS), at the senders' mean frame
	// size.
	BitsPerSecond int64 `json:"bitsPerSecond"`
	// UpperPacketsPerSecond is the lowest rate whose trial lost more than LossRatio; 0 when none did
	// (PacketsPerSecond is the maximum).
	// +optional
	UpperPacketsPerSecond int64 `json:"upperPacketsPerSecond,omitempty"`
}

// SearchPath is one path's (sender to receiver) own loss in the trials of the last phase (at the final trial
// duration): what says which paths lost first when the generator's rate went up.
type SearchPath struct {
	Sender   string `json:"sender"`
	Receiver string `json:"receiver"`
	// LosslessPacketsPerSecond is the path's own rate (what its sender sent it per second) in the highest trial
	// in which it lost at most the NDR's loss ratio; 0 when it lost more in every one.
	// +optional
	LosslessPacketsPerSecond int64 `json:"losslessPacketsPerSecond,omitempty"`
	// FirstLossPacketsPerSecond is the generator's rate (all senders) of the lowest trial in which this path lost
	// more than the NDR's loss ratio; 0 when it never did.
	// +optional
	FirstLossPacketsPerSecond int64 `json:"firstLossPacketsPerSecond,omitempty"`
	// FirstLossRatio is the path's loss ratio in that trial.
	// +optional
	FirstLossRatio string `json:"firstLossRatio,omitempty"`
}

// SearchStatus is where the search of a TrafficGenerator with spec.search stands, and what it found. The
// history holds every trial, so that the controller resumes the search from the status alone after a restart.
type SearchStatus struct {
	// Phase is Searching, Completed, Incomplete (stopped at maxTrials) or Failed.
	Phase SearchPhase `json:"phase"`
	// Message says what the search does or found, or why it failed.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`
	// Trials counts the finished trials, those of the history.
	// +optional
	Trials int32 `json:"trials,omitempty"`
	// ShortTrials counts the trials run again because their senders fell short of their frames: their frames are
	// in no trial of the history.
	// +optional
	ShortTrials int32 `json:"shortTrials,omitempty"`
	// Trial is the trial the agents run now, or the last one once the search is over.
	// +optional
	Trial *SearchTrial `json:"trial,omitempty"`
	// MaxPacketsPerSecond is the highest rate tried: spec.search.maxPacketsPerSecond, or what the senders sent
	// in the first trial.
	// +optional
	MaxPacketsPerSecond int64 `json:"maxPacketsPerSecond,omitempty"`
	// MeanFrameSize is the senders' mean frame size in bytes (without FCS) in the first trial, by which the bit
	// rates are computed.
	// +optional
	MeanFrameSize int64 `json:"meanFrameSize,omitempty"`
	// NDR is the Non-Drop Rate found so far (final once the phase is Completed).
	// +optional
	NDR *SearchRate `json:"ndr,omitempty"`
	// PDR is the Partial-Drop Rate found so far, when spec.search.pdrLossRatio is set.
	// +optional
	PDR *SearchRate `json:"pdr,omitempty"`
	// Paths are each path's own loss in the last phase's trials, at most MaxSearchPaths: the paths that lost
	// first (lowest firstLossPacketsPerSecond) come first, then the others by name.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	Paths []SearchPath `json:"paths,omitempty"`
	// History is every finished trial, in order.
	// +optional
	// +kubebuilder:validation:MaxItems=100
	History []SearchTrialResult `json:"history,omitempty"`
	// StartTime is when the search started; CompletionTime when it ended.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// +optional
	CompletionTime *metav1.Time `json:"completionTime,omitempty"`
}

// CurrentTrial is the trial of the current generation the agents should run, or nil: for a generator without
// spec.search, or before the controller has started the search of the current generation.
func (tg *TrafficGenerator) CurrentTrial() *SearchTrial {
	if tg.Spec.Search == nil || tg.Status.Search == nil || tg.Status.ObservedGeneration != tg.Generation {
		return nil
	}
	return tg.Status.Search.Trial
}

// TrialNumber is the number of the current trial, 0 without one: what the NodeReports of the current run carry.
func (tg *TrafficGenerator) TrialNumber() int32 {
	if t := tg.CurrentTrial(); t != nil {
		return t.Number
	}
	return 0
}

// SenderShare is what each of senders sends in the trial: its share of the trial's rate, in whole frames per
// second, and that rate's frames over the trial's duration. Zeros for a trial as fast as the senders go.
func (t *SearchTrial) SenderShare(senders int) (packetsPerSecond, packets int64) {
	if t.PacketsPerSecond == 0 {
		return 0, 0
	}
	packetsPerSecond = max(1, int64(math.Round(float64(t.PacketsPerSecond)/float64(max(1, senders)))))
	return packetsPerSecond, max(1, int64(math.Round(float64(packetsPerSecond)*t.Duration.Seconds())))
}
