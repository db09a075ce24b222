module roster.dev/services/roster

go 1.26.8

require (
	roster.dev/pkg v0.0.0
	roster.dev/proto v0.0.0
)

replace (
	roster.dev/pkg => ../../pkg
	roster.dev/proto => ../../proto
)
