package outbox

// SetAfterAck lets crash tests die between a batch's acknowledgements and
// the deletion of its rows.
func SetAfterAck(o *Outbox, fn func()) { o.afterAck = fn }
