module roster.dev/proto

go 1.26.8

require google.golang.org/protobuf v1.36.13-0.20261016172727-e9ee2a76ab8e
