package codegen

import (
	"reflect"
	"strings"
)

// jsonFields calls visit for each field of struct type t as encoding/json
// encodes it: by json tag name (or Go name), "-" and unexported fields
// skipped, embedded structs without a tag flattened; optional is true for
// omitempty and omitzero fields.
func jsonFields(t reflect.Type, visit func(name string, f reflect.StructField, optional bool) error) error {
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if err := jsonFields(ft, visit); err != nil {
					return err
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		opts = "," + opts + ","
		optional := strings.Contains(opts, ",omitempty,") || strings.Contains(opts, ",omitzero,")
		if err := visit(name, f, optional); err != nil {
			return err
		}
	}
	return nil
}
