package access

import (
	"hash/maphash"
	"iter"
	"maps"
	"sync/atomic"
)

// cowShards is how many copy-on-write shards a table has: a change copies
// one shard (1/64 of the table), not the whole table.
const cowShards = 64

// cowMap is a string-keyed table read without locks: each shard is an
// immutable map behind an atomic pointer, replaced whole by a change.
// Reads are safe at any time; changes (put, del) must be serialised by the
// caller, and load only used before the table is shared.
type cowMap[V any] struct {
	seed   maphash.Seed
	shards [cowShards]atomic.Pointer[map[string]V]
}

func newCOWMap[V any]() *cowMap[V] {
	m := &cowMap[V]{seed: maphash.MakeSeed()}
	for i := range m.shards {
		empty := map[string]V{}
		m.shards[i].Store(&empty)
	}
	return m
}

func (m *cowMap[V]) shard(k string) *atomic.Pointer[map[string]V] {
	return &m.shards[maphash.String(m.seed, k)%cowShards]
}

func (m *cowMap[V]) get(k string) (V, bool) {
	v, ok := (*m.shard(k).Load())[k]
	return v, ok
}

// load adds k in place: only while the table is not shared yet.
func (m *cowMap[V]) load(k string, v V) { (*m.shard(k).Load())[k] = v }

func (m *cowMap[V]) put(k string, v V) {
	s := m.shard(k)
	next := maps.Clone(*s.Load())
	next[k] = v
	s.Store(&next)
}

func (m *cowMap[V]) del(k string) {
	s := m.shard(k)
	if _, ok := (*s.Load())[k]; !ok {
		return
	}
	next := maps.Clone(*s.Load())
	delete(next, k)
	s.Store(&next)
}

// all yields every entry, shard by shard (each shard as of when it is
// reached).
func (m *cowMap[V]) all() iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		for i := range m.shards {
			for k, v := range *m.shards[i].Load() {
				if !yield(k, v) {
					return
				}
			}
		}
	}
}
