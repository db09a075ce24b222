module roster.dev/services/roster

go 1.26.8

require (
	roster.dev/pkg v0.0.0
	roster.dev/proto v0.0.0
	roster.dev/services/audit v0.0.0
	roster.dev/services/identity v0.0.0
	roster.dev/services/rolepolicy v0.0.0
	roster.dev/services/seatbilling v0.0.0
)

require (
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
)

replace (
	roster.dev/pkg => ../../pkg
	roster.dev/proto => ../../proto
	roster.dev/services/audit => ../audit
	roster.dev/services/identity => ../identity
	roster.dev/services/rolepolicy => ../rolepolicy
	roster.dev/services/seatbilling => ../seatbilling
)
