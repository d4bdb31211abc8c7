package dataplane

import (
	"errors"
	"testing"
)

func TestRenameFieldsNamesEachFieldErrorAsTheFrontEndDoes(t *testing.T) {
	other := errors.New("not a field error")
	err := errors.Join(fieldError(FieldDstAddr, nil, "required"), other, fieldError(FieldVLAN, 4095, "too big"))
	got := RenameFields(err, func(f Field) string { return "spec." + string(f) })
	if want := "spec.dst-addr: required\nnot a field error\nspec.vlan 4095: too big"; got.Error() != want {
		t.Fatalf("RenameFields = %q, want %q", got, want)
	}
	var ce *ConfigError
	if !errors.As(got, &ce) || ce.Field != FieldDstAddr {
		t.Fatalf("RenameFields lost the ConfigError: %v", ce)
	}
	if RenameFields(nil, func(Field) string { return "x" }) != nil {
		t.Fatal("RenameFields(nil) is not nil")
	}
}
