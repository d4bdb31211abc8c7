package dataplane

import (
	"errors"
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// Field names a field of UDPConfig or TCPConfig in errors, so that each front end can name it its own way (a CLI flag, a spec path).
type Field string

// The fields a ConfigError can name.
const (
	FieldInterface Field = "interface"
	FieldDstMAC    Field = "dst-mac"
	FieldSrcMAC    Field = "src-mac"
	FieldDstAddr   Field = "dst-addr"
	FieldSrcAddr   Field = "src-addr"
	FieldDstPort   Field = "dst-port"
	FieldSrcPort   Field = "src-port"
	FieldVLAN      Field = "vlan"
	FieldFrameSize Field = "size"
	FieldSizes     Field = "sizes"
	FieldDstRange  Field = "dst-range"
	FieldSrcRange  Field = "src-range"
	FieldThreads   Field = "threads"
	FieldRate      Field = "rate"
	FieldBurst     Field = "burst"
)

// Fields only TCPConfig has.
const (
	FieldFlows          Field = "flows"
	FieldConnectTimeout Field = "connect-timeout"
)

// Fields only ReplayConfig has.
const (
	// FieldCapture is the capture replayed (its file).
	FieldCapture Field = "capture"
)

// ConfigError is bad input: which field, the value given, and what would work.
type ConfigError struct {
	Field Field
	Value string
	// Problem says what is wrong with the value and what would work instead.
	Problem string
}

func (e *ConfigError) Error() string {
	return e.message(string(e.Field))
}

// message is the error with its field called name.
func (e *ConfigError) message(name string) string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", name, e.Problem)
	}
	return fmt.Sprintf("%s %s: %s", name, e.Value, e.Problem)
}

// RenameFields calls the field of each ConfigError in err (one, or several joined) what name says, so that a
// front end's errors point at what its user wrote (a flag, a spec path). Other errors pass as they are.
func RenameFields(err error, name func(Field) string) error {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	renamed := make([]error, len(errs))
	for i, e := range errs {
		renamed[i] = e
		var ce *ConfigError
		if errors.As(e, &ce) {
			renamed[i] = &renamedFieldError{name: name(ce.Field), err: ce}
		}
	}
	return errors.Join(renamed...)
}

// renamedFieldError is a ConfigError with its field called what a front end calls it.
type renamedFieldError struct {
	name string
	err  *ConfigError
}

func (e *renamedFieldError) Error() string { return e.err.message(e.name) }

func (e *renamedFieldError) Unwrap() error { return e.err }

func fieldError(f Field, value any, format string, args ...any) *ConfigError {
	v := fmt.Sprint(value)
	if value == nil {
		v = ""
	}
	return &ConfigError{Field: f, Value: v, Problem: fmt.Sprintf(format, args...)}
}

// ErrPeerReset is returned (wrapped, with the flow) when the peer resets a connection during a run.
var ErrPeerReset = errors.New("the peer reset the connection")

var errNoLiveFrames = errors.New("this kernel cannot run XDP live frames (BPF_F_TEST_XDP_LIVE_FRAMES needs Linux 5.18 or newer)")

// privilegeHint adds to a permission error what would grant the permission.
func privilegeHint(err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%w: run as root, or with CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON", err)
	}
	return err
}

// macErrors are the errors of MACs that a config gives (nil: resolved or the interface's) but that are not six
// bytes long.
func macErrors(dst, src net.HardwareAddr) []error {
	var errs []error
	for _, m := range []struct {
		field Field
		mac   net.HardwareAddr
	}{{FieldDstMAC, dst}, {FieldSrcMAC, src}} {
		if m.mac != nil && len(m.mac) != 6 {
			errs = append(errs, fieldError(m.field, m.mac, "not an Ethernet MAC: use six bytes such as 02:00:00:00:00:01"))
		}
	}
	return errs
}
