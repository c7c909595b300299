package gguf

import (
	"bytes"
	"fmt"
)

// valueType returns the GGUF type of a KV value's Go type: for arrays,
// typeArray and the element type. ok is false for Go types GGUF cannot
// hold.
func valueType(v any) (typ, elem uint32, ok bool) {
	switch v.(type) {
	case uint8:
		return typeUint8, 0, true
	case int8:
		return typeInt8, 0, true
	case uint16:
		return typeUint16, 0, true
	case int16:
		return typeInt16, 0, true
	case uint32:
		return typeUint32, 0, true
	case int32:
		return typeInt32, 0, true
	case float32:
		return typeFloat32, 0, true
	case bool:
		return typeBool, 0, true
	case string:
		return typeString, 0, true
	case uint64:
		return typeUint64, 0, true
	case int64:
		return typeInt64, 0, true
	case float64:
		return typeFloat64, 0, true
	case []uint8:
		return typeArray, typeUint8, true
	case []int8:
		return typeArray, typeInt8, true
	case []uint16:
		return typeArray, typeUint16, true
	case []int16:
		return typeArray, typeInt16, true
	case []uint32:
		return typeArray, typeUint32, true
	case []int32:
		return typeArray, typeInt32, true
	case []float32:
		return typeArray, typeFloat32, true
	case []bool:
		return typeArray, typeBool, true
	case []string:
		return typeArray, typeString, true
	case []uint64:
		return typeArray, typeUint64, true
	case []int64:
		return typeArray, typeInt64, true
	case []float64:
		return typeArray, typeFloat64, true
	}
	return 0, 0, false
}

// typeName names a KV value's GGUF type as gguf.cpp does ("u32",
// "arr[str]"), or its Go type when GGUF has none.
func typeName(v any) string {
	t, e, ok := valueType(v)
	if !ok {
		return fmt.Sprintf("Go type %T", v)
	}
	if t == typeArray {
		return "arr[" + valueTypeName[e] + "]"
	}
	return valueTypeName[t]
}

// EncodeArray returns the GGUF encoding of an array value (element type,
// count, elements) and whether v is an array value at all.
func EncodeArray(v any) ([]byte, bool) {
	if t, _, _ := valueType(v); t != typeArray {
		return nil, false
	}
	var buf bytes.Buffer
	(&encoder{w: &buf}).array(v)
	return buf.Bytes(), true
}

// ValueTypeName is the GGUF type name of a KV value ("u32", "str",
// "arr[f32]", ...).
func ValueTypeName(v any) string { return typeName(v) }
