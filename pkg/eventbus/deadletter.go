package eventbus

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
)

// DeadLetter is an event that a consumer gave up on.
type DeadLetter struct {
	Sequence   uint64    `json:"sequence"`
	Consumer   string    `json:"consumer"`
	Subject    string    `json:"subject"`
	EventID    string    `json:"event_id"`
	Type       string    `json:"type"`
	Error      string    `json:"error"`
	Deliveries int       `json:"deliveries"`
	Time       time.Time `json:"time"`
}

// ListDeadLetters returns up to max dead letters, oldest first (`roster
// deadletters`).
func ListDeadLetters(nc *nats.Conn, max int) ([]DeadLetter, error) {
	js, err := nc.JetStream()
	if err != nil {
		return nil, err
	}
	info, err := js.StreamInfo(StreamDeadLetter)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	var out []DeadLetter
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && len(out) < max && info.State.Msgs > 0; seq++ {
		m, err := js.GetMsg(StreamDeadLetter, seq)
		if errors.Is(err, nats.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		n, _ := strconv.Atoi(m.Header.Get(HeaderDLDelivery))
		at, _ := time.Parse(time.RFC3339Nano, m.Header.Get(HeaderDLTime))
		out = append(out, DeadLetter{
			Sequence:   m.Sequence,
			Consumer:   m.Header.Get(HeaderDLConsumer),
			Subject:    m.Header.Get(HeaderDLSubject),
			EventID:    m.Header.Get(HeaderID),
			Type:       m.Header.Get(HeaderType),
			Error:      m.Header.Get(HeaderDLError),
			Deliveries: n,
			Time:       at,
		})
	}
	return out, nil
}
