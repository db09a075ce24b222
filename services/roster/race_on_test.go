//go:build race

package roster

// raceDetector: the tests run under the race detector (go test -race).
const raceDetector = true
