package domain

import (
	"fmt"
	"strings"
	"testing"
)

// O-1, O-2, O-3 and declared policies: what a disable does to each item.
func TestDecide(t *testing.T) {
	ticket := func(status string) OwnedItem {
		return OwnedItem{Kind: KindTicket, ID: "T", OwnerID: "me", Status: status}
	}
	report := func(folder string) OwnedItem {
		return OwnedItem{Kind: KindReport, ID: "R", OwnerID: "me", Folder: folder}
	}
	asset := OwnedItem{Kind: KindAsset, ID: "A", OwnerID: "me"}
	token := OwnedItem{Kind: KindAPIToken, ID: "K", OwnerID: "me"}
	custom := func(on string) OwnedItem { return OwnedItem{Kind: "device", ID: "D", OwnerID: "me", OnDisable: on} }
	cases := []struct {
		policy, successor string
		it                OwnedItem
		want              string // action>to instruction
	}{
		// O-1 atera
		{PolicyAtera, "s", ticket(TicketOpen), "unassign> ItemUnassigned"},
		{PolicyAtera, "s", ticket(TicketPending), "unassign> ItemUnassigned"},
		{PolicyAtera, "s", ticket(TicketResolved), "keep> "},
		{PolicyAtera, "s", ticket(TicketClosed), "keep> "},
		{PolicyAtera, "s", report(FolderPersonal), "delete> ReportDeleted"},
		{PolicyAtera, "s", report(FolderShared), "keep> "},
		{PolicyAtera, "s", asset, "keep> "},
		{PolicyAtera, "s", token, "revoke> TokenRevoked"},
		// O-2 atlan
		{PolicyAtlan, "s", asset, "keep> "},
		{PolicyAtlan, "s", ticket(TicketOpen), "keep> "},
		{PolicyAtlan, "s", report(FolderPersonal), "keep> "},
		{PolicyAtlan, "s", token, "revoke> TokenRevoked"},
		// O-3 roster
		{PolicyRoster, "s", ticket(TicketOpen), "reassign>s OwnershipReassigned"},
		{PolicyRoster, "s", ticket(TicketResolved), "reassign>s OwnershipReassigned"},
		{PolicyRoster, "s", report(FolderPersonal), "archive> ReportArchived"},
		{PolicyRoster, "s", report(FolderShared), "reassign>s OwnershipReassigned"},
		{PolicyRoster, "s", asset, "reassign>s OwnershipReassigned"},
		{PolicyRoster, "", asset, "unassign> ItemUnassigned"},
		{PolicyRoster, "s", token, "revoke> TokenRevoked"},
		// Declared policies, under any profile.
		{PolicyAtera, "s", custom(ActionKeep), "keep> "},
		{PolicyAtlan, "s", custom(ActionReassign), "reassign>s OwnershipReassigned"},
		{PolicyRoster, "", custom(ActionReassign), "unassign> ItemUnassigned"},
		{PolicyRoster, "s", custom(ActionDelete), "delete> ItemDeleted"},
		{PolicyRoster, "s", custom(ActionRevoke), "revoke> TokenRevoked"},
		{PolicyAtera, "s", custom(ActionUnassign), "unassign> ItemUnassigned"},
	}
	for _, c := range cases {
		a := Decide(c.policy, c.it, c.successor)
		if got := a.Action + ">" + a.To + " " + a.Instruction; got != c.want || a.Kind != c.it.Kind || a.ID != c.it.ID {
			t.Errorf("%s %s/%s/%s%s successor %q: %s, want %s", c.policy, c.it.Kind, c.it.Status, c.it.Folder, c.it.OnDisable, c.successor, got, c.want)
		}
	}
	for profile, want := range map[string]string{"atera-it": PolicyAtera, "atera-msp": PolicyAtera, "atlan": PolicyAtlan, "roster": PolicyRoster} {
		if got := PolicyFor(profile); got != want {
			t.Errorf("PolicyFor(%s) = %s", profile, got)
		}
	}
}

// O-4: what a registration accepts; a refusal names the field.
func TestOwnedItemValidate(t *testing.T) {
	cases := []struct {
		it    OwnedItem
		field string // "" when valid
	}{
		{OwnedItem{Kind: "ticket", ID: "T1", Status: "open"}, ""},
		{OwnedItem{Kind: "ticket", ID: "T1", Status: "reopened"}, "it.status"},
		{OwnedItem{Kind: "ticket", ID: "T1", Status: "open", Folder: "personal"}, "it.folder"},
		{OwnedItem{Kind: "report", ID: "R1", Folder: "personal"}, ""},
		{OwnedItem{Kind: "report", ID: "R1"}, "it.folder"},
		{OwnedItem{Kind: "report", ID: "R1", Folder: "shared", Status: "open"}, "it.status"},
		{OwnedItem{Kind: "asset", ID: "A1"}, ""},
		{OwnedItem{Kind: "asset", ID: "A1", OnDisable: "keep"}, "it.on_disable"},
		{OwnedItem{Kind: "api_token", ID: "K1", Status: "open"}, "it.status"},
		{OwnedItem{Kind: "device", ID: "D1", OnDisable: "delete"}, ""},
		{OwnedItem{Kind: "device", ID: "D1"}, "it.on_disable"},
		{OwnedItem{Kind: "device", ID: "D1", OnDisable: "archive"}, "it.on_disable"},
		{OwnedItem{Kind: "Device", ID: "D1", OnDisable: "keep"}, "it.kind"},
		{OwnedItem{Kind: "a.b", ID: "D1", OnDisable: "keep"}, "it.kind"},
		{OwnedItem{Kind: "device", ID: "", OnDisable: "keep"}, "it.id"},
		{OwnedItem{Kind: "device", ID: strings.Repeat("x", 201), OnDisable: "keep"}, "it.id"},
		{OwnedItem{Kind: "device", ID: "a\nb", OnDisable: "keep"}, "it.id"},
	}
	for _, c := range cases {
		errs := c.it.Validate("it")
		got := ""
		if len(errs) > 0 {
			got = errs[0].Field
		}
		if got != c.field {
			t.Errorf("%+v: %v, want the field %q", c.it, errs, c.field)
		}
	}
}

// The summary counts a plan by kind and action.
func TestOffboardingSummary(t *testing.T) {
	s := OffboardingSummary{}
	for _, a := range []Action{{Kind: "ticket", Action: "unassign"}, {Kind: "ticket", Action: "unassign"}, {Kind: "ticket", Action: "keep"}, {Kind: "asset", Action: "keep"}} {
		s.Add(a)
	}
	if got := fmt.Sprint(map[string]map[string]int(s)); got != "map[asset:map[keep:1] ticket:map[keep:1 unassign:2]]" {
		t.Fatal(got)
	}
}
