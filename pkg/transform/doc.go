// Package transform filters and reshapes DynamoDB items on their way from
// the input table to the output, for every command that copies or
// compares them (backfill, stream, sync, diff).
//
// A Spec holds a filter, a CEL expression of type bool, and a Transform
// (set, drop, rename). Compile checks it all before any work starts, so a
// syntax or type error is found up front (*CompileError, with the
// position); Program.Apply then runs on each item, and an item it cannot
// process is an *ItemError for the caller to log with the item's key and
// count. Attributes no step touches are the very AttributeValue values
// that were read: numbers keep their digits, sets stay sets.
//
// In the expressions the item is the variable item, a map from attribute
// names to values: S string, N int (integral and within int64) or double,
// B bytes, BOOL bool, NULL null, L list, M map, and SS, NS, BS lists.
//
// For the engines, beside Apply: CheckKeys and OutputKey check and
// compute output keys, KeyDependsOnlyOn tells whether a stream without
// old images can still delete the output item of a REMOVE, and ScanFilter
// gives a FilterExpression that lets DynamoDB drop some items before they
// cross the network. See docs/transform.md.
//
// The package imports nothing from the rest of ddbsync.
package transform
