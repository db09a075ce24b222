package app

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"image/png"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"google.golang.org/protobuf/types/known/timestamppb"

	"roster.dev/pkg/httpx"
	"roster.dev/pkg/problem"
	commonv1 "roster.dev/proto/roster/common/v1"
	identityv1 "roster.dev/proto/roster/identity/v1"
	"roster.dev/services/identity/domain"
)

// TOTPStore keeps second factors and recovery codes (L-3).
type TOTPStore interface {
	TOTPFactor(ctx context.Context, q Querier, technicianID string) (TOTPFactor, error)
	StartTOTP(ctx context.Context, tx *sql.Tx, technicianID, secret string, now time.Time) (bool, error)
	ConfirmTOTP(ctx context.Context, tx *sql.Tx, technicianID string, step int64, now time.Time) (bool, error)
	UseTOTPStep(ctx context.Context, tx *sql.Tx, technicianID string, step int64) (bool, error)
	RemoveTOTP(ctx context.Context, tx *sql.Tx, technicianID string) (bool, error)
	ReplaceRecoveryCodes(ctx context.Context, tx *sql.Tx, technicianID string, hashes []string) error
	UseRecoveryCode(ctx context.Context, tx *sql.Tx, technicianID, hash string, now time.Time) (bool, int, error)
	FreeSessions(ctx context.Context, tx *sql.Tx, technicianID string) error
}

// TOTPFactor is a technician's TOTP secret (base32) and the step of the
// last code accepted.
type TOTPFactor struct {
	TechnicianID string
	Secret       string
	Confirmed    bool
	LastStep     int64
}

// Enrollment is the answer of POST /v1/auth/totp/enroll: the secret to
// type, the otpauth:// URI to scan, and that URI as a QR code PNG
// (base64 in JSON) for the console.
type Enrollment struct {
	Secret          string `json:"secret"`
	ProvisioningURI string `json:"provisioning_uri"`
	QRPNG           []byte `json:"qr_png"`
	Period          int    `json:"period"`
	Digits          int    `json:"digits"`
}

// RecoveryCodes are shown once, at confirmation.
type RecoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// EnrollTOTP starts (or restarts) a TOTP enrolment of the session's
// technician (L-3; RFC 6238: 30 s, 6 digits). 409 once a factor is
// confirmed.
func (c *Credentials) EnrollTOTP(ctx context.Context, accountID, technicianID string) (Enrollment, error) {
	t, err := c.Technicians.Technician(ctx, c.DB, accountID, technicianID)
	if err != nil {
		return Enrollment{}, err
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: domain.TOTPIssuer, AccountName: t.Email, Period: domain.TOTPPeriod,
		Digits: domain.TOTPDigits, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return Enrollment{}, err
	}
	img, err := key.Image(256, 256)
	if err != nil {
		return Enrollment{}, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrollment{}, err
	}
	now := c.Now().UTC().Truncate(time.Microsecond)
	err = c.DB.InTx(ctx, func(tx *sql.Tx) error {
		ok, err := c.TOTP.StartTOTP(ctx, tx, t.ID, key.Secret(), now)
		if err == nil && !ok {
			return domain.ErrSecondFactorEnrolled()
		}
		return err
	})
	if err != nil {
		return Enrollment{}, err
	}
	return Enrollment{Secret: key.Secret(), ProvisioningURI: key.URL(), QRPNG: buf.Bytes(), Period: domain.TOTPPeriod, Digits: 6}, nil
}

// ConfirmTOTP confirms an enrolment with a current code (L-3): the factor
// is on for every later login, the technician's sessions lose any
// enrolment-only restriction, and ten single-use recovery codes are
// returned — once; only their hashes are kept.
func (c *Credentials) ConfirmTOTP(ctx context.Context, accountID, technicianID, code string) (RecoveryCodes, error) {
	f, err := c.TOTP.TOTPFactor(ctx, c.DB, technicianID)
	if errors.Is(err, ErrNotFound) {
		return RecoveryCodes{}, domain.ErrNoEnrollment()
	}
	if err != nil {
		return RecoveryCodes{}, err
	}
	if f.Confirmed {
		return RecoveryCodes{}, domain.ErrSecondFactorEnrolled()
	}
	now := c.Now().UTC().Truncate(time.Microsecond)
	step, ok := domain.MatchTOTP(f.Secret, code, now)
	if !ok {
		return RecoveryCodes{}, problem.Invalid(problem.FieldError{Field: "code", Detail: "is not the current code of the authenticator app"})
	}
	codes := make([]string, domain.RecoveryLen)
	hashes := make([]string, domain.RecoveryLen)
	for i := range codes {
		codes[i] = domain.NewRecoveryCode()
		hashes[i] = hex.EncodeToString(httpx.HashToken(domain.NormalizeRecoveryCode(codes[i])))
	}
	ctx = asTechnician(ctx, technicianID)
	err = c.DB.InTx(ctx, func(tx *sql.Tx) error {
		ok, err := c.TOTP.ConfirmTOTP(ctx, tx, technicianID, step, now)
		if err != nil {
			return err
		}
		if !ok {
			return domain.ErrSecondFactorEnrolled()
		}
		if err := c.TOTP.ReplaceRecoveryCodes(ctx, tx, technicianID, hashes); err != nil {
			return err
		}
		if err := c.TOTP.FreeSessions(ctx, tx, technicianID); err != nil {
			return err
		}
		return c.Bus.Emit(ctx, tx, accountID, &identityv1.SecondFactorEnrolled{
			Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(now)}, TechnicianId: technicianID})
	})
	if err != nil {
		return RecoveryCodes{}, err
	}
	return RecoveryCodes{RecoveryCodes: codes}, nil
}

// RemoveTOTP is an admin removing a technician's second factor (a lost
// phone): the technician enrols again at the next login if the policy
// requires it.
func (c *Credentials) RemoveTOTP(ctx context.Context, accountID, technicianID string) error {
	if _, err := c.Technician(ctx, accountID, technicianID); err != nil {
		return err
	}
	return c.DB.InTx(ctx, func(tx *sql.Tx) error {
		ok, err := c.TOTP.RemoveTOTP(ctx, tx, technicianID)
		if err == nil && !ok {
			return problem.NotFound("second factor of technician " + technicianID)
		}
		return err
	})
}

// checkSecondFactor checks the login's second factor when the technician
// has one (L-3): while the factor is locked, 423; no code, 401
// second-factor-required (the password was right); a TOTP code is accepted
// once — its step must come after the last accepted one, so a code cannot
// be replayed in its window — and a recovery code once ever. Failures are
// counted on their own factor and lock it like passwords do (L-2).
func (c *Credentials) checkSecondFactor(ctx context.Context, rec LoginRecord, email, code string) (checked bool, _ error) {
	f, err := c.TOTP.TOTPFactor(ctx, c.DB, rec.TechnicianID)
	if errors.Is(err, ErrNotFound) || err == nil && !f.Confirmed {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := c.lockedOut(ctx, rec.AccountID, rec.TechnicianID, email, domain.FactorTOTP); err != nil {
		return false, err
	}
	if code == "" {
		return false, domain.ErrSecondFactorRequired()
	}
	now := c.Now().UTC().Truncate(time.Microsecond)
	reason := "totp"
	accepted := false
	err = c.DB.InTx(ctx, func(tx *sql.Tx) error {
		accepted = false
		if step, ok := domain.MatchTOTP(f.Secret, code, now); ok {
			used, err := c.TOTP.UseTOTPStep(ctx, tx, rec.TechnicianID, step)
			if err != nil {
				return err
			}
			accepted = used
			if !used {
				reason = "totp_replay"
			}
			return nil
		}
		norm := domain.NormalizeRecoveryCode(code)
		if norm == "" {
			return nil
		}
		used, left, err := c.TOTP.UseRecoveryCode(ctx, tx, rec.TechnicianID, hex.EncodeToString(httpx.HashToken(norm)), now)
		if err != nil || !used {
			reason = "recovery_code"
			return err
		}
		accepted = true
		return c.Bus.Emit(asTechnician(ctx, rec.TechnicianID), tx, rec.AccountID, &identityv1.RecoveryCodeUsed{
			Meta: &commonv1.EventMeta{OccurredAt: timestamppb.New(now)}, TechnicianId: rec.TechnicianID, Remaining: int32(left)})
	})
	if err != nil {
		return false, err
	}
	if accepted {
		return true, nil
	}
	return false, c.fail(ctx, failure{accountID: rec.AccountID, technicianID: rec.TechnicianID, email: email, reason: reason,
		factor: domain.FactorTOTP}, domain.ErrInvalidSecondFactor())
}

// enrollmentPending says whether the policy requires a second factor the
// technician has not confirmed (L-3): the session then serves enrolment
// only.
func (c *Credentials) enrollmentPending(ctx context.Context, q Querier, accountID, technicianID string) (bool, error) {
	pol, err := c.Security.Policy(ctx, q, accountID)
	if err != nil || pol.RequireSecondFactor == domain.SecondFactorNone {
		return false, err
	}
	t, err := c.Technicians.Technician(ctx, q, accountID, technicianID)
	if err != nil {
		return false, err
	}
	if !pol.SecondFactorRequired(t.IsAdmin) {
		return false, nil
	}
	f, err := c.TOTP.TOTPFactor(ctx, q, technicianID)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	return err == nil && !f.Confirmed, err
}
