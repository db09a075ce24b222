// Command roster runs Roster (see `roster --help`).
package main

import (
	"os"

	"roster.dev/services/roster"
)

func main() { os.Exit(roster.Main(os.Args[1:])) }
