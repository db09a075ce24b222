package app

import (
	"context"
	"fmt"

	"roster.dev/services/audit/domain"
)

// exportPage is how many records an export reads at a time: memory stays
// flat however long the chain.
const exportPage = 1000

// Export calls rec with every record f selects, in sequence order, reading
// a page at a time. When f selects the whole chain, it first signs
// the chain's head, exports the records up to it and calls cp with each
// checkpoint right after the record it covers, so the export ends with a
// signature over its last record and verifies offline with the public key
// . cp may be nil.
func (a *App) Export(ctx context.Context, f Filter, rec func(domain.Record) error, cp func(domain.Checkpoint) error) error {
	whole := f.Whole() && cp != nil && a.Checkpoints != nil
	if whole {
		head, err := a.Checkpoint(ctx, f.AccountID)
		if err != nil {
			return fmt.Errorf("export %s: %w", f.AccountID, err)
		}
		if head.Sequence == 0 {
			return nil
		}
		f.UpTo = head.Sequence
	}
	f.Limit = exportPage
	for {
		rs, err := a.Records.List(ctx, f)
		if err != nil {
			return fmt.Errorf("export %s: %w", f.AccountID, err)
		}
		if len(rs) == 0 {
			return nil
		}
		var cps []domain.Checkpoint
		if whole {
			if cps, err = a.Checkpoints.ListCheckpoints(ctx, f.AccountID, f.After, rs[len(rs)-1].Sequence, len(rs)+1); err != nil {
				return fmt.Errorf("export %s: %w", f.AccountID, err)
			}
		}
		for _, r := range rs {
			if err := rec(r); err != nil {
				return err
			}
			for len(cps) > 0 && cps[0].Sequence <= r.Sequence {
				if err := cp(cps[0]); err != nil {
					return err
				}
				cps = cps[1:]
			}
		}
		if len(rs) < exportPage {
			return nil
		}
		f.After = rs[len(rs)-1].Sequence
	}
}
