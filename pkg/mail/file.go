package mail

import (
	"context"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
)

// File writes each message to Dir/<id>.eml. The file appears whole or not
// at all (written to a temporary file, synced, then renamed), and a message
// sent again replaces its file: a retry after a crash never duplicates.
// Files are 0600 and Dir 0700: the mails carry single-use secret links.
type File struct {
	Dir  string
	From *mail.Address
}

// Path is the file a message with this id is written to.
func (f *File) Path(id string) string { return filepath.Join(f.Dir, id+".eml") }

func (f *File) Send(ctx context.Context, m Message) error {
	to, err := m.check()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	tmp, err := os.CreateTemp(f.Dir, ".tmp-"+m.ID+"-*")
	if err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	_, err = tmp.Write(render(m, f.From, to))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.Path(m.ID))
	}
	if err != nil {
		return fmt.Errorf("mail: write %s: %w", f.Path(m.ID), err)
	}
	// The rename is durable once the directory is: the caller forgets the
	// message when Send returns.
	if d, err := os.Open(f.Dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
