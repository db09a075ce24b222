package eventbus

// SetAfterCommit lets crash tests die between a handler's commit and its ack.
func SetAfterCommit(b *Bus, fn func(eventID string)) { b.afterCommit = fn }
