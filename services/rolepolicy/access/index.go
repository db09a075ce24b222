package access

import (
	"fmt"
	"maps"
	"math/bits"
	"sort"
	"sync"
	"sync/atomic"

	"roster.dev/pkg/profile"
	"roster.dev/services/rolepolicy/domain"
)

// Index answers access checks from memory (issue 5, item 7). Reads take
// no lock: every table is copy-on-write (cowMap), so a check never waits
// for a writer and checks on all CPUs never contend with each other.
// Writers of an account are serialised by the account's mutex; each
// change replaces one table shard (or, for Install, the whole account)
// atomically, so a check sees each change whole or not at all.
//
// The index knows nothing of transactions. Its writers (app) change it
// while they hold the account's database lock, as the last step of the
// transaction, so changes reach it in commit order; see app.App.
type Index struct {
	mu       sync.Mutex // serialises writers of the accounts map
	accounts atomic.Pointer[map[string]*account]
	catalogs sync.Map // profile id → *catalog
}

// New returns an empty index.
func New() *Index {
	x := &Index{}
	empty := map[string]*account{}
	x.accounts.Store(&empty)
	return x
}

// State is one account as stored: what Install builds the account's index
// from.
type State struct {
	Account     domain.Account
	Roles       []domain.Role
	Technicians []domain.Technician
	Sites       []domain.Site
	Folders     []domain.Folder
}

type account struct {
	mu      sync.Mutex // serialises the account's writers
	id      string
	profile string
	cat     *catalog
	roles   *cowMap[*role]
	techs   *cowMap[tech]
	sites   *cowMap[string] // id → name
	folders *cowMap[folder]
}

// permSet is a set of catalog permissions, one bit each in catalog order.
type permSet uint64

// maxPermissions is how many permissions a catalog may hold (permSet).
const maxPermissions = 64

// catalog is a profile's permission catalog compiled for checks.
type catalog struct {
	ids        []string
	categories []string
	bit        map[string]permSet
	// folderScoped are the permissions a folder exclusion removes: the
	// remote-management and RMM categories.
	folderScoped permSet
	adminFull    permSet
	autoAssign   permSet
}

// Categories whose permissions act on devices, which folder exclusion
// removes.
var folderScopedCategories = map[string]bool{"remote": true, "rmm": true}

// Permission ids the decision treats specially.
const (
	AdminFull      = "admin.full"
	AutoAssignment = "ticketing.auto_assignment"
)

func compileCatalog(p profile.RolePolicy) (*catalog, error) {
	if len(p.Catalog) > maxPermissions {
		return nil, fmt.Errorf("catalog of %d permissions; the index holds at most %d", len(p.Catalog), maxPermissions)
	}
	c := &catalog{bit: make(map[string]permSet, len(p.Catalog))}
	for i, e := range p.Catalog {
		b := permSet(1) << i
		c.ids = append(c.ids, e.ID)
		c.categories = append(c.categories, e.Category)
		c.bit[e.ID] = b
		if folderScopedCategories[e.Category] {
			c.folderScoped |= b
		}
	}
	c.adminFull, c.autoAssign = c.bit[AdminFull], c.bit[AutoAssignment]
	return c, nil
}

func (x *Index) catalogOf(profileID string) (*catalog, error) {
	if c, ok := x.catalogs.Load(profileID); ok {
		return c.(*catalog), nil
	}
	p, err := profile.Get(profileID)
	if err != nil {
		return nil, err
	}
	c, err := compileCatalog(p.RolePolicy)
	if err != nil {
		return nil, fmt.Errorf("profile %s: %w", profileID, err)
	}
	x.catalogs.Store(profileID, c)
	return c, nil
}

func (c *catalog) set(ids []string) permSet {
	var s permSet
	for _, id := range ids {
		s |= c.bit[id] // an id the catalog no longer has grants nothing
	}
	return s
}

func (c *catalog) list(s permSet) []string {
	out := []string{}
	for s != 0 {
		i := bits.TrailingZeros64(uint64(s))
		out = append(out, c.ids[i])
		s &^= 1 << i
	}
	return out
}

// role is a role compiled for checks. It is never changed once built: an
// update (R-4: whole-role replacement) builds a new one.
type role struct {
	id, name string
	builtIn  bool
	// admin: the built-in Admin role, not a custom admin.full one.
	admin   bool
	perms   permSet
	siteIDs []string
	// sites is nil when the role reaches every site.
	sites       map[string]struct{}
	excludedIDs []string
	excluded    map[string]struct{}
	version     int64
}

func compileRole(c *catalog, r domain.Role) *role {
	cr := &role{
		id: r.ID, name: r.Name, builtIn: r.BuiltIn, admin: r.IsAdmin(),
		perms: c.set(r.Permissions), version: r.Version,
		siteIDs: append([]string{}, r.SiteIDs...), excludedIDs: append([]string{}, r.ExcludedFolderIDs...),
	}
	if len(r.SiteIDs) > 0 {
		cr.sites = make(map[string]struct{}, len(r.SiteIDs))
		for _, id := range r.SiteIDs {
			cr.sites[id] = struct{}{}
		}
	}
	cr.excluded = make(map[string]struct{}, len(r.ExcludedFolderIDs))
	for _, id := range r.ExcludedFolderIDs {
		cr.excluded[id] = struct{}{}
	}
	return cr
}

type tech struct {
	roleID string
	status domain.Status
}

type folder struct{ siteID, name string }

// Install replaces one account's index with st: when an account is set
// up, and to resynchronise an account with the database.
func (x *Index) Install(st State) error {
	acc, err := x.build(st)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	next := maps.Clone(*x.accounts.Load())
	next[acc.id] = acc
	x.accounts.Store(&next)
	return nil
}

// InstallAll replaces the whole index with states: the rebuild from the
// database at start.
func (x *Index) InstallAll(states []State) error {
	next := make(map[string]*account, len(states))
	for _, st := range states {
		acc, err := x.build(st)
		if err != nil {
			return err
		}
		next[acc.id] = acc
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.accounts.Store(&next)
	return nil
}

func (x *Index) build(st State) (*account, error) {
	cat, err := x.catalogOf(st.Account.Profile)
	if err != nil {
		return nil, fmt.Errorf("index account %s: %w", st.Account.ID, err)
	}
	acc := &account{
		id: st.Account.ID, profile: st.Account.Profile, cat: cat,
		roles: newCOWMap[*role](), techs: newCOWMap[tech](), sites: newCOWMap[string](), folders: newCOWMap[folder](),
	}
	// Not published yet: filled in place.
	for _, r := range st.Roles {
		acc.roles.load(r.ID, compileRole(cat, r))
	}
	for _, t := range st.Technicians {
		acc.techs.load(t.ID, tech{roleID: t.RoleID, status: t.Status})
	}
	for _, s := range st.Sites {
		acc.sites.load(s.ID, s.Name)
	}
	for _, f := range st.Folders {
		acc.folders.load(f.ID, folder{siteID: f.SiteID, name: f.Name})
	}
	return acc, nil
}

func (x *Index) account(id string) *account { return (*x.accounts.Load())[id] }

// change runs fn on an account under its write lock; false when the index
// does not know the account.
func (x *Index) change(accountID string, fn func(*account)) bool {
	acc := x.account(accountID)
	if acc == nil {
		return false
	}
	acc.mu.Lock()
	defer acc.mu.Unlock()
	fn(acc)
	return true
}

// PutRole adds or replaces a role (R-3, R-4: whole). False when the
// account is unknown.
func (x *Index) PutRole(r domain.Role) bool {
	return x.change(r.AccountID, func(acc *account) { acc.roles.put(r.ID, compileRole(acc.cat, r)) })
}

// DeleteRole removes a role.
func (x *Index) DeleteRole(accountID, roleID string) bool {
	return x.change(accountID, func(acc *account) { acc.roles.del(roleID) })
}

// PutTechnician records the role a technician holds and its status (R-6,
//
func (x *Index) PutTechnician(t domain.Technician) bool {
	return x.change(t.AccountID, func(acc *account) { acc.techs.put(t.ID, tech{roleID: t.RoleID, status: t.Status}) })
}

// PutSite records a site.
func (x *Index) PutSite(s domain.Site) bool {
	return x.change(s.AccountID, func(acc *account) { acc.sites.put(s.ID, s.Name) })
}

// PutFolder records a device folder.
func (x *Index) PutFolder(f domain.Folder) bool {
	return x.change(f.AccountID, func(acc *account) { acc.folders.put(f.ID, folder{siteID: f.SiteID, name: f.Name}) })
}

// Check decides an access check from memory. Unknown ids are
// denied, with a code that says which (Code.Unknown).
func (x *Index) Check(accountID string, q Request) Decision {
	acc := x.account(accountID)
	if acc == nil {
		return Decision{Code: UnknownAccount, Request: q}
	}
	d := Decision{Request: q}
	t, ok := acc.techs.get(q.TechnicianID)
	if !ok {
		d.Code = UnknownTechnician
		return d
	}
	p, ok := acc.cat.bit[q.Permission]
	if !ok {
		d.Code = UnknownPermission
		return d
	}
	if q.FolderID != "" {
		f, ok := acc.folders.get(q.FolderID)
		switch {
		case !ok:
			d.Code = UnknownFolder
			return d
		case q.SiteID != "" && q.SiteID != f.siteID:
			d.Code = FolderNotInSite
			return d
		}
		d.Request.SiteID = f.siteID // a folder's devices are in its site
	} else if q.SiteID != "" {
		if _, ok := acc.sites.get(q.SiteID); !ok {
			d.Code = UnknownSite
			return d
		}
	}
	return acc.decide(t, p, d)
}

// decide is R-7 for a known technician, permission p, and the site and
// folder of d.Request (known to the account).
func (acc *account) decide(t tech, p permSet, d Decision) Decision {
	if t.status == domain.StatusDisabled {
		d.Code = DeniedDisabled
		return d
	}
	r, _ := acc.roles.get(t.roleID)
	if r == nil {
		d.Code = DeniedNoRole
		return d
	}
	d.RoleID, d.RoleName = r.id, r.name
	return r.decide(acc.cat, p, d)
}

// decide is the rule of one role, in the order that
// says most about why: the Admin role first, then client isolation (a
// site outside the scope is not seen at all), the permission, and the
// folder exclusion last (it only narrows a permission the role holds).
func (r *role) decide(c *catalog, p permSet, d Decision) Decision {
	if r.admin {
		d.Allowed, d.Code = true, AllowedAdmin
		return d
	}
	if site := d.Request.SiteID; site != "" && r.sites != nil {
		if _, in := r.sites[site]; !in {
			d.Code = DeniedSiteScope
			return d
		}
	}
	if r.perms&p == 0 {
		// admin.full is full admin access within the role's scope,
		// except ticket auto-assignment, which a custom admin joins only
		// when its role lists it (the Admin role always does, R-2).
		if r.perms&c.adminFull == 0 || p&c.autoAssign != 0 {
			d.Code = DeniedPermission
			d.AdminFullNoAutoAssignment = r.perms&c.adminFull != 0
			return d
		}
		d.ViaAdminFull = true
	}
	if f := d.Request.FolderID; f != "" {
		if _, excluded := r.excluded[f]; excluded {
			if p&c.folderScoped != 0 {
				d.Code, d.ViaAdminFull = DeniedFolderExcluded, false
				return d
			}
			d.FolderVisible = true
		}
	}
	d.Allowed, d.Code = true, AllowedByRole
	return d
}

// Explanation is a technician's effective access (issue 5, item 6): every
// permission of the catalog per site of the role's scope — one "every
// site" entry when the role is not limited to sites — with the decision
// of each, and the folders whose devices lose permissions.
type Explanation struct {
	// Code is "" when the technician was found, else UnknownAccount or
	// UnknownTechnician.
	Code         Code
	TechnicianID string
	Status       domain.Status
	RoleID       string
	RoleName     string
	BuiltIn      bool
	// Admin: the built-in Admin role.
	Admin bool
	// AllSites: the role reaches every site.
	AllSites bool
	Sites    []SiteAccess
}

// SiteAccess is the access on one site, or on every site (SiteID "").
type SiteAccess struct {
	SiteID      string
	SiteName    string
	Permissions []PermissionAccess
	// ExcludedFolders are the role's excluded folders in this site (in
	// every site for the "every site" entry).
	ExcludedFolders []FolderAccess
}

// PermissionAccess is one permission's decision.
type PermissionAccess struct {
	Permission string
	Category   string
	Decision   Decision
}

// FolderAccess is what a folder exclusion does.
type FolderAccess struct {
	FolderID   string
	FolderName string
	SiteID     string
	// Removed are the permissions the technician holds on the site but not
	// on this folder's devices (remote management and RMM), in catalog
	// order; every other permission still reaches them.
	Removed []string
}

// Explain returns a technician's effective access, computed with the same
// rule as Check.
func (x *Index) Explain(accountID, technicianID string) Explanation {
	acc := x.account(accountID)
	if acc == nil {
		return Explanation{Code: UnknownAccount, TechnicianID: technicianID}
	}
	t, ok := acc.techs.get(technicianID)
	if !ok {
		return Explanation{Code: UnknownTechnician, TechnicianID: technicianID}
	}
	e := Explanation{TechnicianID: technicianID, Status: t.status, AllSites: true}
	r, _ := acc.roles.get(t.roleID)
	if r != nil {
		e.RoleID, e.RoleName, e.BuiltIn, e.Admin = r.id, r.name, r.builtIn, r.admin
		e.AllSites = r.sites == nil || r.admin
	}
	scopes := []string{""}
	if !e.AllSites {
		scopes = r.siteIDs
	}
	for _, site := range scopes {
		sa := SiteAccess{SiteID: site, SiteName: acc.siteName(site)}
		for i, id := range acc.cat.ids {
			q := Request{TechnicianID: technicianID, Permission: id, SiteID: site}
			sa.Permissions = append(sa.Permissions, PermissionAccess{
				Permission: id, Category: acc.cat.categories[i],
				Decision: acc.decide(t, permSet(1)<<i, Decision{Request: q}),
			})
		}
		if r != nil && !r.admin {
			sa.ExcludedFolders = acc.excludedFolders(t, r, site)
		}
		e.Sites = append(e.Sites, sa)
	}
	return e
}

// excludedFolders lists r's excluded folders in site ("" for every site),
// each with the permissions the exclusion removes from t there.
func (acc *account) excludedFolders(t tech, r *role, site string) []FolderAccess {
	var out []FolderAccess
	for _, fid := range r.excludedIDs {
		f, ok := acc.folders.get(fid)
		if !ok || (site != "" && f.siteID != site) {
			continue
		}
		fa := FolderAccess{FolderID: fid, FolderName: f.name, SiteID: f.siteID, Removed: []string{}}
		for i, id := range acc.cat.ids {
			onSite := acc.decide(t, permSet(1)<<i, Decision{Request: Request{Permission: id, SiteID: f.siteID}})
			inFolder := acc.decide(t, permSet(1)<<i, Decision{Request: Request{Permission: id, SiteID: f.siteID, FolderID: fid}})
			if onSite.Allowed && !inFolder.Allowed {
				fa.Removed = append(fa.Removed, id)
			}
		}
		out = append(out, fa)
	}
	return out
}

// AccountDump is an account's index in plain values: for comparing a live
// index with one rebuilt from the database (tests) and for diagnostics.
type AccountDump struct {
	Profile     string
	Roles       map[string]RoleDump
	Technicians map[string]TechnicianDump
	Sites       map[string]string
	Folders     map[string]FolderDump
}

// RoleDump is a compiled role in plain values.
type RoleDump struct {
	Name              string
	BuiltIn, Admin    bool
	Permissions       []string
	SiteIDs           []string
	ExcludedFolderIDs []string
	Version           int64
}

// TechnicianDump is what the index keeps of a technician.
type TechnicianDump struct {
	RoleID string
	Status domain.Status
}

// FolderDump is what the index keeps of a folder.
type FolderDump struct{ SiteID, Name string }

// Dump returns every account's index in plain values.
func (x *Index) Dump() map[string]AccountDump {
	out := map[string]AccountDump{}
	for id, acc := range *x.accounts.Load() {
		d := AccountDump{Profile: acc.profile, Roles: map[string]RoleDump{}, Technicians: map[string]TechnicianDump{},
			Sites: map[string]string{}, Folders: map[string]FolderDump{}}
		for rid, r := range acc.roles.all() {
			d.Roles[rid] = RoleDump{Name: r.name, BuiltIn: r.builtIn, Admin: r.admin, Permissions: acc.cat.list(r.perms),
				SiteIDs: sorted(r.siteIDs), ExcludedFolderIDs: sorted(r.excludedIDs), Version: r.version}
		}
		for tid, t := range acc.techs.all() {
			d.Technicians[tid] = TechnicianDump{RoleID: t.roleID, Status: t.status}
		}
		for sid, name := range acc.sites.all() {
			d.Sites[sid] = name
		}
		for fid, f := range acc.folders.all() {
			d.Folders[fid] = FolderDump{SiteID: f.siteID, Name: f.name}
		}
		out[id] = d
	}
	return out
}

func (acc *account) siteName(id string) string {
	name, _ := acc.sites.get(id)
	return name
}

func sorted(s []string) []string {
	out := append([]string{}, s...)
	sort.Strings(out)
	return out
}
