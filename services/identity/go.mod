module roster.dev/services/identity

go 1.26.8

require (
	roster.dev/pkg v0.0.0
	roster.dev/proto v0.0.0
)

require (
	github.com/boombuler/barcode v1.0.1-0.20190219062509-6c824513bacc // indirect
	github.com/go-chi/chi/v5 v5.5.0 // indirect
	github.com/pquerna/otp v1.5.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
)

replace (
	roster.dev/pkg => ../../pkg
	roster.dev/proto => ../../proto
)
