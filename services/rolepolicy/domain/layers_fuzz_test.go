package domain

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"roster.dev/pkg/profile"
)

// FuzzLayerSpecs: persona and purpose bodies either pass the checks
// — then every field the checks promise holds — or are refused naming
// fields; never a panic.
func FuzzLayerSpecs(f *testing.F) {
	f.Add([]byte(`{"name":"Snowflake readers","grants":[{"connection":"snowflake-prod","asset_types":["table","view"],"actions":["read"]}],"ui":["glossary"]}`))
	f.Add([]byte(`{"name":"PII","classifications":["PII"],"members":["tech_1"],"actions":["read"],"data_policy":{"action":"mask","except":["tech_2"]}}`))
	f.Add([]byte(`{"name":" ","grants":[{"actions":["fly"]}],"ui":["casino"],"data_policy":{"action":"hide"}}`))
	f.Add([]byte(`{"grants":null,"classifications":[" ",""]}`))
	f.Add([]byte(`{"name":"EU","classifications":["Customer"],"data_policy":{"action":"filter","row_filter":"region = 'EU'"}}`))
	f.Add([]byte(`{"a":`))
	p, err := profile.Get("atlan")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var ps PersonaSpec
		if json.Unmarshal(raw, &ps) == nil {
			got, err := CheckPersona(p.RolePolicy, ps)
			if err == nil {
				if got.Name == "" || got.Grants == nil {
					t.Fatalf("accepted %+v", got)
				}
				for _, g := range got.Grants {
					if g.Connection == "" || len(g.AssetTypes) == 0 || len(g.Actions) == 0 {
						t.Fatalf("accepted grant %+v", g)
					}
				}
				for _, u := range got.UI {
					if !slices.Contains(p.RolePolicy.UIAreas, u) {
						t.Fatalf("accepted UI area %q", u)
					}
				}
			} else if inv, ok := err.(*InvalidError); !ok || len(inv.Fields) == 0 {
				t.Fatalf("refused without naming a field: %v", err)
			}
		}
		var us PurposeSpec
		if json.Unmarshal(raw, &us) == nil {
			got, err := CheckPurpose(p.RolePolicy, us)
			if err == nil {
				if got.Name == "" || len(got.Classifications) == 0 || (len(got.Actions) == 0 && got.DataPolicy == nil) {
					t.Fatalf("accepted %+v", got)
				}
				if d := got.DataPolicy; d != nil && (!slices.Contains([]string{EffectMask, EffectDeny, EffectFilter}, d.Action) || (d.Action == EffectFilter) != (d.RowFilter != "")) {
					t.Fatalf("accepted policy %+v", got.DataPolicy)
				}
				if slices.ContainsFunc(got.Classifications, func(c string) bool { return strings.TrimSpace(c) == "" }) {
					t.Fatalf("accepted a blank classification: %+v", got)
				}
			} else if inv, ok := err.(*InvalidError); !ok || len(inv.Fields) == 0 {
				t.Fatalf("refused without naming a field: %v", err)
			}
		}
	})
}
