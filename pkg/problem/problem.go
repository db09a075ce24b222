// Package problem writes RFC 9457 problem details (application/problem+json)
// with stable type URIs under https://roster.dev/problems/.
package problem

import (
	"encoding/json"
	"net/http"
)

// Base of every problem type URI.
const Base = "https://roster.dev/problems/"

// FieldError names one invalid request field.
type FieldError struct {
	Field  string `json:"field"`
	Detail string `json:"detail"`
}

// Problem is an RFC 9457 problem. Extensions are added as top-level members.
type Problem struct {
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Status     int            `json:"status"`
	Detail     string         `json:"detail,omitempty"`
	Errors     []FieldError   `json:"errors,omitempty"`
	Extensions map[string]any `json:"-"`
}

// New returns a problem of type slug (e.g. "email-reserved").
func New(status int, slug, title, detail string) *Problem {
	return &Problem{Type: Base + slug, Title: title, Status: status, Detail: detail}
}

// Invalid is a 422 naming each bad field.
func Invalid(errs ...FieldError) *Problem {
	p := New(http.StatusUnprocessableEntity, "validation", "The request has invalid fields", "")
	p.Errors = errs
	if len(errs) == 1 {
		p.Detail = errs[0].Field + ": " + errs[0].Detail
	}
	return p
}

// With adds an extension member.
func (p *Problem) With(key string, v any) *Problem {
	if p.Extensions == nil {
		p.Extensions = map[string]any{}
	}
	p.Extensions[key] = v
	return p
}

func (p *Problem) Error() string { return p.Title + ": " + p.Detail }

// MarshalJSON flattens extensions into the object.
func (p *Problem) MarshalJSON() ([]byte, error) {
	type plain Problem
	b, err := json.Marshal((*plain)(p))
	if err != nil || len(p.Extensions) == 0 {
		return b, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range p.Extensions {
		if _, taken := m[k]; !taken {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// Write sends p.
func Write(w http.ResponseWriter, p *Problem) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

// Common problems.
var (
	NotFound = func(what string) *Problem {
		return New(http.StatusNotFound, "not-found", "Not found", what+" does not exist")
	}
	Unauthorized = func() *Problem {
		return New(http.StatusUnauthorized, "unauthorized", "Authentication required", "send Authorization: Bearer <token>")
	}
	Forbidden = func(detail string) *Problem { return New(http.StatusForbidden, "forbidden", "Forbidden", detail) }
	Internal  = func() *Problem {
		return New(http.StatusInternalServerError, "internal", "Internal error", "the error was logged; retry later")
	}
)
