package ports

import (
	"context"
	"encoding/json"
	"strings"

	"roster.dev/services/identity/app"
	"roster.dev/services/identity/domain"
)

type ctxT = context.Context

// baseMark stands for the account's SCIM base URL in the static documents;
// withBase replaces it, so no URI field is ever empty.
const baseMark = "{scim-base}"

func withBase(v any, base app.ScimBase) any {
	b, _ := json.Marshal(v)
	b = []byte(strings.ReplaceAll(string(b), baseMark, string(base)))
	var out any
	_ = json.Unmarshal(b, &out)
	return out
}

func listOf(docs []map[string]any) map[string]any {
	res := make([]any, len(docs))
	for i, d := range docs {
		res[i] = d
	}
	return map[string]any{"schemas": []string{domain.SchemaList}, "totalResults": len(docs), "startIndex": 1,
		"itemsPerPage": len(docs), "Resources": res}
}

func meta(kind, id string) map[string]any {
	return map[string]any{"resourceType": kind, "location": baseMark + "/" + kind + "s/" + id}
}

var serviceProviderConfig = map[string]any{
	"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
	"documentationUri": "https://roster.dev/docs/api-notes#scim",
	"patch":            map[string]any{"supported": true},
	"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": 0},
	"filter":           map[string]any{"supported": true, "maxResults": app.MaxScimCount},
	"changePassword":   map[string]any{"supported": false},
	"sort":             map[string]any{"supported": false},
	"etag":             map[string]any{"supported": false},
	"authenticationSchemes": []any{map[string]any{
		"type": "oauthbearertoken", "name": "Bearer token", "primary": true,
		"description": "An account API token with the scim scope (POST /v1/accounts/{acc}/tokens)",
		"specUri":     "https://www.rfc-editor.org/rfc/rfc6750",
	}},
	"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": baseMark + "/ServiceProviderConfig"},
}

func attr(name, typ string, opts ...any) map[string]any {
	a := map[string]any{"name": name, "type": typ, "multiValued": false, "required": false, "caseExact": false,
		"mutability": "readWrite", "returned": "default", "uniqueness": "none"}
	for i := 0; i+1 < len(opts); i += 2 {
		a[opts[i].(string)] = opts[i+1]
	}
	return a
}

var schemas = []map[string]any{
	{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":      domain.SchemaUser, "name": "User", "description": "A technician",
		"attributes": []any{
			attr("userName", "string", "required", true, "uniqueness", "server"),
			attr("name", "complex", "subAttributes", []any{attr("givenName", "string"), attr("familyName", "string"), attr("formatted", "string", "mutability", "readOnly")}),
			attr("displayName", "string"),
			attr("title", "string"),
			attr("active", "boolean"),
			attr("password", "string", "mutability", "writeOnly", "returned", "never"),
			attr("emails", "complex", "multiValued", true, "subAttributes", []any{attr("value", "string"), attr("type", "string"), attr("primary", "boolean")}),
			attr("phoneNumbers", "complex", "multiValued", true, "subAttributes", []any{attr("value", "string"), attr("type", "string")}),
			attr("groups", "complex", "multiValued", true, "mutability", "readOnly", "subAttributes", []any{attr("value", "string"), attr("display", "string")}),
		},
		"meta": meta("Schema", domain.SchemaUser),
	},
	{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":      domain.SchemaEnterprise, "name": "EnterpriseUser", "description": "Enterprise attributes of a technician",
		"attributes": []any{
			attr("employeeNumber", "string"), attr("department", "string"),
			attr("manager", "complex", "subAttributes", []any{attr("value", "string")}),
		},
		"meta": meta("Schema", domain.SchemaEnterprise),
	},
	{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Schema"},
		"id":      domain.SchemaGroup, "name": "Group", "description": "A group; its displayName names the role of its members",
		"attributes": []any{
			attr("displayName", "string", "required", true, "uniqueness", "server"),
			attr("members", "complex", "multiValued", true, "subAttributes", []any{attr("value", "string", "caseExact", true), attr("display", "string")}),
		},
		"meta": meta("Schema", domain.SchemaGroup),
	},
}

var resourceTypes = []map[string]any{
	{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
		"id":      "User", "name": "User", "endpoint": "/Users", "description": "Technicians",
		"schema":           domain.SchemaUser,
		"schemaExtensions": []any{map[string]any{"schema": domain.SchemaEnterprise, "required": false}},
		"meta":             meta("ResourceType", "User"),
	},
	{
		"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"},
		"id":      "Group", "name": "Group", "endpoint": "/Groups", "description": "Groups mapped to roles",
		"schema": domain.SchemaGroup, "schemaExtensions": []any{},
		"meta": meta("ResourceType", "Group"),
	},
}
