// Command ddbsync copies DynamoDB tables and keeps them in sync.
package main

import (
	"os"

	"github.com/ddbsync/ddbsync/internal/cmd/root"
)

func main() {
	os.Exit(root.Main())
}
