module roster.dev/services/rolepolicy

go 1.26.8

require (
	roster.dev/pkg v0.0.0
	roster.dev/proto v0.0.0
)

require github.com/google/uuid v1.6.0 // indirect

replace (
	roster.dev/pkg => ../../pkg
	roster.dev/proto => ../../proto
)
