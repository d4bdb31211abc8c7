package dataplane

import (
	"fmt"
	"slices"
	"strings"

	"github.com/xdpgen/xdpgen/bpf"
)

// FrameSizes varies a UDP run's frame size from frame to frame: a range, or a weighted mix. Sizes are Ethernet
// frame lengths without FCS, as UDPConfig.FrameSize. The send program trims each frame from a template of the
// largest size and fixes its lengths and checksums: a mix costs no userspace work per frame.
type FrameSizes struct {
	// Min and Max bound a range of sizes, sent in turn (Min, Min+1, ..., Max, Min, ...) or, with Random,
	// uniformly at random. Give a range or Mix.
	Min, Max int
	Random   bool
	// Mix is a weighted mix: each size in turn, interleaved (smooth weighted round robin), so that every
	// sum(weights) frames of a thread hold each size exactly its weight's times.
	Mix []WeightedSize
}

// WeightedSize is one size of a mix and its weight.
type WeightedSize struct {
	Size, Weight int
}

// MaxMixSizes and MaxMixWeight bound a mix: its distinct sizes (each is a bucket of the achieved mix), and the sum
// of its weights (the program's table of slots).
const (
	MaxMixSizes  = bpf.SizeBuckets
	MaxMixWeight = bpf.MixSlots
)

// SizeProfiles are the named mixes. IMIX is usually given in frame sizes with FCS (64, 570 and 1518 bytes, 7:4:1);
// here the sizes are without FCS, as every size of a run is, so that its largest frame fits a 1500-byte MTU.
var SizeProfiles = map[string][]WeightedSize{
	"imix-simple": {{60, 7}, {566, 4}, {1514, 1}},
}

// SizeProfileNames lists the named mixes, sorted, for help texts and errors.
func SizeProfileNames() []string {
	names := make([]string, 0, len(SizeProfiles))
	for n := range SizeProfiles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// SizeProfile is the named mix, or an error for field f that lists the names.
func SizeProfile(f Field, name string) ([]WeightedSize, error) {
	mix, ok := SizeProfiles[name]
	if !ok {
		return nil, fieldError(f, name, "not a size profile: use one of %s, or give the sizes and their weights",
			strings.Join(SizeProfileNames(), ", "))
	}
	return slices.Clone(mix), nil
}

func (s FrameSizes) String() string {
	if len(s.Mix) > 0 {
		parts := make([]string, len(s.Mix))
		for i, w := range s.Mix {
			parts[i] = fmt.Sprintf("%d:%d", w.Size, w.Weight)
		}
		return "mix " + strings.Join(parts, ",")
	}
	order := "stepped"
	if s.Random {
		order = "random"
	}
	return fmt.Sprintf("%d-%d %s", s.Min, s.Max, order)
}

// smallest and largest bound the sizes.
func (s FrameSizes) smallest() int {
	if len(s.Mix) == 0 {
		return s.Min
	}
	return slices.MinFunc(s.Mix, func(a, b WeightedSize) int { return a.Size - b.Size }).Size
}

func (s FrameSizes) largest() int {
	if len(s.Mix) == 0 {
		return s.Max
	}
	return slices.MaxFunc(s.Mix, func(a, b WeightedSize) int { return a.Size - b.Size }).Size
}

// mean is the average frame size the run sends: what a rate in bits per second is paced by.
func (s FrameSizes) mean() float64 {
	if len(s.Mix) == 0 {
		return float64(s.Min+s.Max) / 2
	}
	var sum, weights int
	for _, w := range s.Mix {
		sum += w.Size * w.Weight
		weights += w.Weight
	}
	return float64(sum) / float64(weights)
}

// errors says what is wrong with s, given the smallest frame the headers allow (lo, described by what).
func (s FrameSizes) errors(lo int, what string) []error {
	inBounds := func(size int) error {
		if size < lo {
			return fieldError(FieldSizes, size, "below the smallest %s frame: use sizes of at least %d bytes", what, lo)
		}
		if size > MaxLiveFrameSize {
			return fieldError(FieldSizes, size, "live frames hold at most %d bytes (one page): use smaller sizes", MaxLiveFrameSize)
		}
		return nil
	}
	var errs []error
	if len(s.Mix) == 0 {
		if s.Min > s.Max {
			return []error{fieldError(FieldSizes, fmt.Sprintf("%d-%d", s.Min, s.Max), "the range ends below its start: give MIN-MAX with MIN <= MAX")}
		}
		for _, size := range []int{s.Min, s.Max} {
			if err := inBounds(size); err != nil {
				errs = append(errs, err)
			}
		}
		return errs
	}
	if s.Random {
		errs = append(errs, fieldError(FieldSizes, s, "a mix is sent interleaved: random order applies to a range of sizes"))
	}
	if len(s.Mix) > MaxMixSizes {
		errs = append(errs, fieldError(FieldSizes, s, "%d sizes: a mix has at most %d", len(s.Mix), MaxMixSizes))
	}
	seen := map[int]bool{}
	total := 0
	for _, w := range s.Mix {
		if err := inBounds(w.Size); err != nil {
			errs = append(errs, err)
		}
		if seen[w.Size] {
			errs = append(errs, fieldError(FieldSizes, w.Size, "given twice: give each size of a mix once, with its whole weight"))
		}
		seen[w.Size] = true
		if w.Weight < 1 {
			errs = append(errs, fieldError(FieldSizes, fmt.Sprintf("%d:%d", w.Size, w.Weight), "weights are whole numbers from 1"))
		}
		total += max(w.Weight, 0)
	}
	if total > MaxMixWeight {
		errs = append(errs, fieldError(FieldSizes, s, "the weights add up to %d: scale them down to at most %d in total", total, MaxMixWeight))
	}
	return errs
}

// SizeCount is what a run sent of one bucket of frame sizes, [Min, Max].
type SizeCount struct {
	Min     int    `json:"min"`
	Max     int    `json:"max"`
	Packets uint64 `json:"packets"`
}

func (c SizeCount) String() string {
	if c.Min == c.Max {
		return fmt.Sprintf("%d bytes", c.Min)
	}
	return fmt.Sprintf("%d-%d bytes", c.Min, c.Max)
}

// buckets are the size buckets the program counts in: a mix's sizes, or up to MaxMixSizes equal slices of a range.
func (s FrameSizes) buckets() []SizeCount {
	if len(s.Mix) > 0 {
		sizes := make([]int, len(s.Mix))
		for i, w := range s.Mix {
			sizes[i] = w.Size
		}
		slices.Sort(sizes)
		b := make([]SizeCount, len(sizes))
		for i, size := range sizes {
			b[i] = SizeCount{Min: size, Max: size}
		}
		return b
	}
	count := s.Max - s.Min + 1
	width := (count + bpf.SizeBuckets - 1) / bpf.SizeBuckets
	var b []SizeCount
	for lo := s.Min; lo <= s.Max; lo += width {
		b = append(b, SizeCount{Min: lo, Max: min(lo+width-1, s.Max)})
	}
	return b
}

// mixSlots is the order a mix's sizes are sent in: smooth weighted round robin (nginx's), which spreads each
// size over the cycle instead of sending its frames back to back.
func (s FrameSizes) mixSlots() []uint16 {
	current := make([]int, len(s.Mix))
	total := 0
	for _, w := range s.Mix {
		total += w.Weight
	}
	slots := make([]uint16, total)
	for i := range slots {
		best := 0
		for j, w := range s.Mix {
			current[j] += w.Weight
			if current[j] > current[best] {
				best = j
			}
		}
		current[best] -= total
		slots[i] = uint16(s.Mix[best].Size)
	}
	return slots
}

// program fills the send program's size configuration for template t (of the largest size, with its UDP header
// at udpOff): the mode and order, and for each length sent its bucket and the UDP checksum's change from t's.
func (s FrameSizes) program(cfg *bpf.UDPConfig, t []byte, udpOff int) {
	switch {
	case len(s.Mix) > 0:
		cfg.SizeMode = bpf.SizesMix
		slots := s.mixSlots()
		cfg.MixLen = uint16(len(slots))
		copy(cfg.Mix[:], slots)
	case s.Random:
		cfg.SizeMode = bpf.SizesRandom
	default:
		cfg.SizeMode = bpf.SizesStepped
	}
	cfg.SizeMin, cfg.SizeCount = uint16(s.Min), uint16(s.Max-s.Min+1)
	full := lengthSum(t, udpOff, len(t))
	for i, b := range s.buckets() {
		for l := b.Min; l <= b.Max; l++ {
			cfg.Sizes[l].Bucket = uint8(i)
			cfg.Sizes[l].UdpSum = fold(uint32(lengthSum(t, udpOff, l)) + uint32(^full))
		}
	}
}

// lengthSum is the one's complement sum of what a frame's length changes in its UDP checksum when t is trimmed
// to n bytes: the payload left, and the UDP length (counted twice: in the header and in the pseudo-header).
func lengthSum(t []byte, udpOff, n int) uint16 {
	sum := 2 * uint32(n-udpOff)
	p := t[udpOff+udpHeaderLen : n]
	for i := 0; i+1 < len(p); i += 2 {
		sum += uint32(p[i])<<8 | uint32(p[i+1])
	}
	if len(p)%2 == 1 {
		sum += uint32(p[len(p)-1]) << 8
	}
	return fold(sum)
}

// fold folds a 32-bit one's complement sum to 16 bits (not complemented).
func fold(sum uint32) uint16 {
	sum = sum&0xffff + sum>>16
	sum = sum&0xffff + sum>>16
	return uint16(sum)
}
