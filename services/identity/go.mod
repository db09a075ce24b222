module roster.dev/services/identity

go 1.26.8

require (
	roster.dev/pkg v0.0.0
	roster.dev/proto v0.0.0
)

require (
	github.com/go-chi/chi/v5 v5.5.0 // indirect
	github.com/q-uint/parser v0.3.1 // indirect
	github.com/scim2/filter-parser/v2 v2.3.1
	golang.org/x/crypto v0.58.0 // indirect
)

replace (
	roster.dev/pkg => ../../pkg
	roster.dev/proto => ../../proto
)
