package rolepolicy

import (
	"time"

	"roster.dev/services/rolepolicy/app"
)

// App is the service's use cases, for tests that compare its live access
// index with one rebuilt from the database.
func (s *Service) App() *app.App { return s.app }

// SetCatchUp sets how often Run compares the index with the database.
func (s *Service) SetCatchUp(d time.Duration) { s.catchUp = d }
