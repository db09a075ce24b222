package domain

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
	"unicode/utf8"
)

// appendCanonical appends r's canonical form (Canonical) to buf, assuming
// r.Data is already canonical JSON, as NewRecord and Seal make it: the
// members in their RFC 8785 order, written directly instead of through a
// generic JSON tree. It is about twenty times faster than Canonical, which
// verification of a million records needs (A-2, docs/performance.md); when
// r.Data is not canonical the bytes differ from Canonical's and the hash
// does not match, and the caller falls back to the definition.
func appendCanonical(buf []byte, r Record) []byte {
	buf = append(buf, `{"account_id":`...)
	buf = appendString(buf, r.AccountID)
	buf = append(buf, `,"action":`...)
	buf = appendString(buf, r.Action)
	buf = append(buf, `,"actor":{"id":`...)
	buf = appendString(buf, r.Actor.ID)
	buf = append(buf, `,"type":`...)
	buf = appendString(buf, r.Actor.Type)
	buf = append(buf, `},"correlation_id":`...)
	buf = appendString(buf, r.CorrelationID)
	buf = append(buf, `,"data":`...)
	buf = append(buf, r.Data...)
	buf = append(buf, `,"id":`...)
	buf = appendString(buf, r.ID)
	buf = append(buf, `,"prev_hash":`...)
	buf = appendString(buf, r.PrevHash)
	buf = append(buf, `,"sequence":`...)
	buf = strconv.AppendInt(buf, r.Sequence, 10)
	buf = append(buf, `,"source_address":`...)
	buf = appendString(buf, r.SourceAddress)
	buf = append(buf, `,"target":{"id":`...)
	buf = appendString(buf, r.Target.ID)
	buf = append(buf, `,"type":`...)
	buf = appendString(buf, r.Target.Type)
	buf = append(buf, `},"time":"`...)
	buf = r.Time.AppendFormat(buf, time.RFC3339Nano)
	return append(buf, `"}`...)
}

// appendString is writeCanonicalString for a byte slice.
func appendString(buf []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			buf = append(buf, c)
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		i += n
		switch {
		case r == '"':
			buf = append(buf, `\"`...)
		case r == '\\':
			buf = append(buf, `\\`...)
		case r == '\b':
			buf = append(buf, `\b`...)
		case r == '\f':
			buf = append(buf, `\f`...)
		case r == '\n':
			buf = append(buf, `\n`...)
		case r == '\r':
			buf = append(buf, `\r`...)
		case r == '\t':
			buf = append(buf, `\t`...)
		case r < 0x20:
			buf = append(buf, '\\', 'u', '0', '0', hexDigits[r>>4], hexDigits[r&0xf])
		default:
			buf = utf8.AppendRune(buf, r) // an invalid byte becomes U+FFFD, as in encoding/json
		}
	}
	return append(buf, '"')
}

// hasher computes chain hashes reusing one buffer.
type hasher struct{ buf []byte }

// matches reports whether want is r's chain hash: first over r's fast
// canonical form, then, only when that differs, by the definition
// (HashOf), so a record whose data was stored in another but equivalent
// JSON form still verifies as an outsider's JCS library would.
func (h *hasher) matches(r Record, want string) bool {
	if len(want) != 2*sha256.Size {
		return false
	}
	if len(r.Data) > 0 && r.Time.Year() >= 0 && r.Time.Year() <= 9999 {
		h.buf = appendCanonical(h.buf[:0], r)
		sum := sha256.Sum256(h.buf)
		var got [2 * sha256.Size]byte
		hex.Encode(got[:], sum[:])
		if string(got[:]) == want {
			return true
		}
	}
	slow, err := HashOf(r)
	return err == nil && slow == want
}
