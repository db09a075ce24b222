// Package pkg is the root of Roster's shared plumbing: each sub-package is
// small and named for what it gives (eventbus, outbox, store, natsembed, …).
// No service rules live here.
package pkg
