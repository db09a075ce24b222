package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	filter "github.com/scim2/filter-parser/v2"
)

// H-2: SCIM 2.0 (RFC 7643, RFC 7644) as Entra ID and Okta speak it. The
// resources are JSON documents (map[string]any); filters, PATCH operations
// and attribute projections work on documents generically, with attribute
// names compared case-insensitively everywhere (RFC 7643 §2.1).

// SCIM schema URNs.
const (
	SchemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	SchemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	SchemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	SchemaList       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
	SchemaError      = "urn:ietf:params:scim:api:messages:2.0:Error"
	SchemaPatchOp    = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	SchemaSearch     = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
)

// ScimError is an error with its SCIM status and scimType (RFC 7644 §3.12).
type ScimError struct {
	Status   int
	ScimType string
	Detail   string
}

func (e *ScimError) Error() string { return e.Detail }

// ErrInvalidFilter is the 400 of an unsupported or malformed filter: never
// an unfiltered list.
func ErrInvalidFilter(detail string) *ScimError {
	return &ScimError{Status: 400, ScimType: "invalidFilter", Detail: detail}
}

// ErrInvalidValue is a 400 naming the bad value.
func ErrInvalidValue(detail string) *ScimError {
	return &ScimError{Status: 400, ScimType: "invalidValue", Detail: detail}
}

// ErrInvalidPath is a 400 for a PATCH path that names nothing supported.
func ErrInvalidPath(detail string) *ScimError {
	return &ScimError{Status: 400, ScimType: "invalidPath", Detail: detail}
}

// Get returns doc's member named key, compared case-insensitively.
func Get(doc map[string]any, key string) (any, bool) {
	if v, ok := doc[key]; ok {
		return v, true
	}
	for k, v := range doc {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// set stores v under key, replacing a member of another case.
func set(doc map[string]any, key string, v any) {
	for k := range doc {
		if strings.EqualFold(k, key) && k != key {
			delete(doc, k)
		}
	}
	doc[key] = v
}

func del(doc map[string]any, key string) {
	for k := range doc {
		if strings.EqualFold(k, key) {
			delete(doc, k)
		}
	}
}

// GetString returns a string member, "" when absent or not a string.
func GetString(doc map[string]any, key string) string {
	v, _ := Get(doc, key)
	s, _ := v.(string)
	return s
}

// GetObject returns an object member (nil when absent).
func GetObject(doc map[string]any, key string) map[string]any {
	v, _ := Get(doc, key)
	m, _ := v.(map[string]any)
	return m
}

// Bool reads a SCIM boolean: true/false, or the strings Entra ID sends
// ("True", "False", any case).
func Bool(v any) (bool, bool) {
	switch b := v.(type) {
	case bool:
		return b, true
	case string:
		p, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(b)))
		return p, err == nil
	}
	return false, false
}

// caseExact attributes compare exactly; every other string compares
// case-insensitively (userName, emails.value, displayName, …).
var caseExact = map[string]bool{"id": true, "externalid": true, "members.value": true}

// unquoted matches `attr op bareword`, which Entra ID sends for externalId
// (externalId eq 7c8b…) and the grammar refuses: the value is quoted and
// the filter parsed again.
var unquoted = regexp.MustCompile(`^\s*([A-Za-z][\w.:-]*)\s+(eq|ne|co|sw|ew|gt|lt|ge|le)\s+([^"\s()\[\]]+)\s*$`)

// subAfterValuePath matches emails[type eq "work"].value eq "…", which
// Entra ID sends and the grammar lacks: it is read as
// emails[type eq "work" and value eq "…"].
var subAfterValuePath = regexp.MustCompile(`([A-Za-z][\w:.-]*)\[([^\]]*)\]\.([A-Za-z]\w*)\s+(?i:(eq|ne|co|sw|ew|gt|ge|lt|le))\s+("(?:[^"\\]|\\.)*"|[^\s()]+)`)

// ParseFilter parses a SCIM filter.
func ParseFilter(s string) (filter.Expression, error) {
	if len(s) > 2000 {
		return nil, ErrInvalidFilter("the filter is longer than 2000 characters")
	}
	s = subAfterValuePath.ReplaceAllString(s, "$1[$2 and $3 $4 $5]")
	exp, err := filter.ParseFilter([]byte(s))
	if err != nil {
		if m := unquoted.FindStringSubmatch(s); m != nil {
			switch strings.ToLower(m[3]) {
			case "true", "false", "null":
			default:
				if _, nerr := strconv.ParseFloat(m[3], 64); nerr != nil {
					exp, err = filter.ParseFilter([]byte(m[1] + " " + m[2] + " " + strconv.Quote(m[3])))
				}
			}
		}
	}
	if err != nil || exp == nil {
		return nil, ErrInvalidFilter(fmt.Sprintf("the filter %q cannot be parsed (RFC 7644 §3.4.2.2)", s))
	}
	return exp, nil
}

// Filterable lists the attributes a filter may name, per resource type,
// lower case, with their sub-attributes as "attr.sub".
type Filterable map[string]bool

// UserFilterable and GroupFilterable are what /Users and /Groups filter on.
var (
	UserFilterable = Filterable{"id": true, "externalid": true, "username": true, "displayname": true, "active": true,
		"name.givenname": true, "name.familyname": true, "emails.value": true, "emails.type": true, "emails": true,
		"title": true, "meta.created": true, "meta.lastmodified": true,
		"employeenumber": true, "department": true}
	GroupFilterable = Filterable{"id": true, "externalid": true, "displayname": true, "members.value": true, "members": true,
		"meta.created": true, "meta.lastmodified": true}
)

// CheckFilter refuses a filter naming attributes or operators this server
// does not evaluate (400 invalidFilter, RFC 7644 §3.4.2.2).
func CheckFilter(exp filter.Expression, allowed Filterable) error {
	switch e := exp.(type) {
	case *filter.LogicalExpression:
		if err := CheckFilter(e.Left, allowed); err != nil {
			return err
		}
		return CheckFilter(e.Right, allowed)
	case *filter.NotExpression:
		return CheckFilter(e.Expression, allowed)
	case *filter.AttributeExpression:
		name := attrName(e.AttributePath)
		if !allowed[name] {
			return ErrInvalidFilter(fmt.Sprintf("filtering on %q is not supported", e.AttributePath))
		}
		switch e.Operator {
		case filter.EQ, filter.NE, filter.CO, filter.SW, filter.EW, filter.PR, filter.GT, filter.GE, filter.LT, filter.LE:
		default:
			return ErrInvalidFilter(fmt.Sprintf("operator %q is not supported", e.Operator))
		}
		return nil
	case *filter.ValuePath:
		if !allowed[strings.ToLower(e.AttributePath.AttributeName)] {
			return ErrInvalidFilter(fmt.Sprintf("filtering on %q is not supported", e.AttributePath))
		}
		return CheckFilter(e.ValueFilter, Filterable{"value": true, "type": true, "primary": true, "display": true})
	}
	return ErrInvalidFilter("unsupported filter expression")
}

// attrName is "name.givenname" for name.givenName; an enterprise
// attribute loses its URN.
func attrName(p filter.AttributePath) string {
	n := strings.ToLower(p.AttributeName)
	if p.SubAttribute != nil {
		n += "." + strings.ToLower(*p.SubAttribute)
	}
	return n
}

// container is the object holding a path's attribute: the document, or
// its extension object for an extension URN.
func container(doc map[string]any, uri string) map[string]any {
	if uri == "" || strings.EqualFold(uri, SchemaUser) || strings.EqualFold(uri, SchemaGroup) {
		return doc
	}
	return GetObject(doc, uri)
}

// Match evaluates a checked filter against a resource document.
func Match(doc map[string]any, exp filter.Expression) bool { return match(doc, exp, "") }

// match evaluates exp on doc, an element of the multi-valued attribute
// parent ("" for the resource itself).
func match(doc map[string]any, exp filter.Expression, parent string) bool {
	switch e := exp.(type) {
	case *filter.LogicalExpression:
		if e.Operator == filter.AND {
			return match(doc, e.Left, parent) && match(doc, e.Right, parent)
		}
		return match(doc, e.Left, parent) || match(doc, e.Right, parent)
	case *filter.NotExpression:
		return !match(doc, e.Expression, parent)
	case *filter.ValuePath:
		c := container(doc, e.AttributePath.URI())
		v, _ := Get(c, e.AttributePath.AttributeName)
		for _, el := range asList(v) {
			if m, ok := el.(map[string]any); ok && match(m, e.ValueFilter, strings.ToLower(e.AttributePath.AttributeName)) {
				return true
			}
		}
		return false
	case *filter.AttributeExpression:
		c := container(doc, e.AttributePath.URI())
		if c == nil {
			c = doc
		}
		if ext := extensionOf(e.AttributePath); ext != nil {
			c = ext(doc)
		}
		v, ok := Get(c, e.AttributePath.AttributeName)
		if !ok {
			return e.Operator == filter.NE && e.CompareValue != nil
		}
		name := strings.ToLower(e.AttributePath.AttributeName)
		if parent != "" {
			name = parent + "." + name
		}
		exact := caseExact[name]
		var values []any
		for _, el := range asList(v) {
			if sub := e.AttributePath.SubAttribute; sub != nil {
				m, _ := el.(map[string]any)
				sv, ok := Get(m, *sub)
				if !ok {
					continue
				}
				exact = caseExact[name+"."+strings.ToLower(*sub)]
				values = append(values, sv)
				continue
			}
			if m, ok := el.(map[string]any); ok { // emails eq "x": the value sub-attribute
				if sv, ok := Get(m, "value"); ok {
					values = append(values, sv)
				}
				exact = caseExact[name+".value"]
				continue
			}
			values = append(values, el)
		}
		if e.Operator == filter.PR {
			for _, x := range values {
				if x != nil && x != "" {
					return true
				}
			}
			return false
		}
		for _, x := range values {
			if compare(x, e.Operator, e.CompareValue, exact) {
				return true
			}
		}
		return e.Operator == filter.NE && len(values) == 0
	}
	return false
}

// extensionOf lets a filter name an enterprise attribute without its URN
// (department eq "IT"): looked up in the extension when the core lacks it.
func extensionOf(p filter.AttributePath) func(map[string]any) map[string]any {
	if p.URIPrefix != nil {
		return nil
	}
	switch strings.ToLower(p.AttributeName) {
	case "employeenumber", "department", "manager", "organization", "division", "costcenter":
		return func(doc map[string]any) map[string]any { return GetObject(doc, SchemaEnterprise) }
	}
	return nil
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

func compare(got any, op filter.CompareOperator, want any, exact bool) bool {
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		if !ok {
			if b, isBool := got.(bool); isBool { // active eq "True"
				if wb, ok := Bool(w); ok {
					return (op == filter.EQ) == (b == wb)
				}
			}
			return op == filter.NE
		}
		if !exact {
			g, w = strings.ToLower(g), strings.ToLower(w)
		}
		switch op {
		case filter.EQ:
			return g == w
		case filter.NE:
			return g != w
		case filter.CO:
			return strings.Contains(g, w)
		case filter.SW:
			return strings.HasPrefix(g, w)
		case filter.EW:
			return strings.HasSuffix(g, w)
		case filter.GT:
			return g > w
		case filter.GE:
			return g >= w
		case filter.LT:
			return g < w
		case filter.LE:
			return g <= w
		}
	case bool:
		g, ok := Bool(got)
		switch op {
		case filter.EQ:
			return ok && g == w
		case filter.NE:
			return !ok || g != w
		}
	case nil:
		return (op == filter.EQ) == (got == nil)
	default: // numbers: compared as text, ids here are strings
		return compare(got, op, fmt.Sprint(w), exact)
	}
	return false
}

// PatchOp is one PATCH operation (RFC 7644 §3.5.2) with op lower-cased
// (Entra ID sends "Replace", "Add", "Remove").
type PatchOp struct {
	Op    string          `json:"op"`
	Path  string          `json:"path"`
	Value json.RawMessage `json:"value"`
}

// ParsePatch reads a PatchOp request body.
func ParsePatch(body []byte) ([]PatchOp, error) {
	var req struct {
		Schemas    []string  `json:"schemas"`
		Operations []PatchOp `json:"Operations"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, ErrInvalidValue("the body is not a PatchOp request: " + err.Error())
	}
	if len(req.Operations) == 0 {
		// The member name may come in another case (operations).
		var loose map[string]json.RawMessage
		_ = json.Unmarshal(body, &loose)
		for k, v := range loose {
			if strings.EqualFold(k, "operations") {
				_ = json.Unmarshal(v, &req.Operations)
			}
		}
	}
	if len(req.Operations) == 0 {
		return nil, ErrInvalidValue("Operations must hold at least one operation")
	}
	if len(req.Operations) > 1000 {
		return nil, &ScimError{Status: 413, Detail: "at most 1000 operations"}
	}
	for i := range req.Operations {
		op := &req.Operations[i]
		op.Op = strings.ToLower(strings.TrimSpace(op.Op))
		switch op.Op {
		case "add", "replace", "remove":
		default:
			return nil, ErrInvalidValue(fmt.Sprintf("Operations[%d].op must be add, replace or remove", i))
		}
		if op.Op == "remove" && op.Path == "" && len(op.Value) == 0 {
			return nil, &ScimError{Status: 400, ScimType: "noTarget", Detail: fmt.Sprintf("Operations[%d]: remove needs a path", i)}
		}
	}
	return req.Operations, nil
}

// ApplyPatch applies ops to doc (a resource as JSON) in order. Entra ID's
// path-less replace with dotted keys (name.givenName) and full-URN keys
// (urn:…:enterprise:2.0:User:employeeNumber) is read as the paths they
// spell. Members removed by a value list are only those listed.
func ApplyPatch(doc map[string]any, ops []PatchOp) error {
	for i, op := range ops {
		var value any
		if len(op.Value) > 0 {
			if err := json.Unmarshal(op.Value, &value); err != nil {
				return ErrInvalidValue(fmt.Sprintf("Operations[%d].value: %v", i, err))
			}
		}
		if op.Path == "" {
			obj, ok := value.(map[string]any)
			if !ok {
				if op.Op == "remove" {
					return &ScimError{Status: 400, ScimType: "noTarget", Detail: fmt.Sprintf("Operations[%d]: remove needs a path", i)}
				}
				return ErrInvalidValue(fmt.Sprintf("Operations[%d]: without a path the value must be an object", i))
			}
			keys := make([]string, 0, len(obj))
			for k := range obj {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if err := applyPath(doc, op.Op, pathOfKey(k), obj[k], i); err != nil {
					return err
				}
			}
			continue
		}
		if err := applyPath(doc, op.Op, op.Path, value, i); err != nil {
			return err
		}
	}
	return nil
}

// pathOfKey turns a path-less value's key into a path: a full-URN key
// (urn:…:User:employeeNumber) is already one, as are dotted keys.
func pathOfKey(k string) string { return k }

func applyPath(doc map[string]any, op, raw string, value any, i int) error {
	// An extension object as a whole ("urn:…:enterprise:2.0:User": {…}).
	if strings.EqualFold(raw, SchemaEnterprise) {
		obj, ok := value.(map[string]any)
		if op == "remove" {
			del(doc, SchemaEnterprise)
			return nil
		}
		if !ok {
			return ErrInvalidValue(fmt.Sprintf("Operations[%d]: %s must be an object", i, SchemaEnterprise))
		}
		for k, v := range obj {
			if err := applyPath(doc, op, SchemaEnterprise+":"+k, v, i); err != nil {
				return err
			}
		}
		return nil
	}
	p, err := filter.ParsePath([]byte(raw))
	if err != nil {
		return ErrInvalidPath(fmt.Sprintf("Operations[%d].path %q cannot be parsed", i, raw))
	}
	c := doc
	if uri := p.AttributePath.URI(); uri != "" && !strings.EqualFold(uri, SchemaUser) && !strings.EqualFold(uri, SchemaGroup) {
		if !strings.EqualFold(uri, SchemaEnterprise) {
			return ErrInvalidPath(fmt.Sprintf("Operations[%d].path: unknown schema %s", i, uri))
		}
		c = GetObject(doc, SchemaEnterprise)
		if c == nil {
			c = map[string]any{}
			set(doc, SchemaEnterprise, c)
		}
	}
	name := p.AttributePath.AttributeName
	sub := p.AttributePath.SubAttribute
	if p.SubAttribute != nil {
		sub = p.SubAttribute
	}
	if p.ValueExpression != nil {
		return applyFiltered(c, op, name, p.ValueExpression, sub, value, i)
	}
	if sub != nil { // name.givenName
		obj := GetObject(c, name)
		if op == "remove" {
			if obj != nil {
				del(obj, *sub)
			}
			return nil
		}
		if obj == nil {
			obj = map[string]any{}
			set(c, name, obj)
		}
		set(obj, *sub, value)
		return nil
	}
	cur, exists := Get(c, name)
	switch op {
	case "remove":
		if list, ok := cur.([]any); ok && value != nil {
			// remove members with a value list: only those listed.
			drop := map[string]bool{}
			for _, v := range asList(value) {
				if m, ok := v.(map[string]any); ok {
					drop[fmt.Sprint(m["value"])] = true
				}
			}
			var keep []any
			for _, el := range list {
				if m, ok := el.(map[string]any); ok && drop[fmt.Sprint(m["value"])] {
					continue
				}
				keep = append(keep, el)
			}
			if keep == nil {
				keep = []any{}
			}
			set(c, name, keep)
			return nil
		}
		del(c, name)
	case "add":
		if list, ok := cur.([]any); ok && exists {
			set(c, name, mergeList(list, asList(value)))
			return nil
		}
		if add, ok := value.([]any); ok && !exists {
			set(c, name, mergeList(nil, add))
			return nil
		}
		if obj, ok := value.(map[string]any); ok {
			if curObj, ok := cur.(map[string]any); ok {
				for k, v := range obj {
					set(curObj, k, v)
				}
				return nil
			}
		}
		set(c, name, value)
	case "replace":
		if obj, ok := value.(map[string]any); ok {
			if curObj, ok := cur.(map[string]any); ok && !strings.EqualFold(name, "manager") {
				for k, v := range obj {
					set(curObj, k, v)
				}
				return nil
			}
		}
		set(c, name, value)
	}
	return nil
}

// mergeList appends the elements of add not already in list (by value).
func mergeList(list, add []any) []any {
	seen := map[string]bool{}
	for _, el := range list {
		if m, ok := el.(map[string]any); ok {
			seen[fmt.Sprint(m["value"])] = true
		}
	}
	out := append([]any{}, list...)
	for _, el := range add {
		if m, ok := el.(map[string]any); ok {
			k := fmt.Sprint(m["value"])
			if seen[k] {
				continue
			}
			seen[k] = true
		}
		out = append(out, el)
	}
	return out
}

// applyFiltered handles emails[type eq "work"].value and
// members[value eq "…"].
func applyFiltered(c map[string]any, op, name string, exp filter.Expression, sub *string, value any, i int) error {
	if err := CheckFilter(exp, Filterable{"value": true, "type": true, "primary": true, "display": true}); err != nil {
		return ErrInvalidPath(fmt.Sprintf("Operations[%d].path: %v", i, err))
	}
	cur, _ := Get(c, name)
	list, _ := cur.([]any)
	var out []any
	matched := false
	for _, el := range list {
		m, ok := el.(map[string]any)
		if !ok || !match(m, exp, strings.ToLower(name)) {
			out = append(out, el)
			continue
		}
		matched = true
		switch {
		case op == "remove" && sub == nil:
			continue // the element goes
		case op == "remove":
			del(m, *sub)
		case sub != nil:
			set(m, *sub, value)
		default:
			if obj, ok := value.(map[string]any); ok {
				for k, v := range obj {
					set(m, k, v)
				}
			}
		}
		out = append(out, m)
	}
	if !matched && op != "remove" {
		// Entra ID replaces emails[type eq "work"].value on a user
		// without one: the element is created from the filter.
		el := map[string]any{}
		if ae, ok := exp.(*filter.AttributeExpression); ok && ae.Operator == filter.EQ {
			el[ae.AttributePath.AttributeName] = ae.CompareValue
		}
		if sub != nil {
			el[*sub] = value
		} else if obj, ok := value.(map[string]any); ok {
			for k, v := range obj {
				el[k] = v
			}
		}
		out = append(out, el)
	}
	if out == nil {
		out = []any{}
	}
	set(c, name, out)
	return nil
}

// Project applies attributes and excludedAttributes (RFC 7644 §3.9) to a
// resource: id and schemas are always returned.
func Project(doc map[string]any, attributes, excluded string) map[string]any {
	split := func(s string) []string {
		var out []string
		for _, a := range strings.Split(s, ",") {
			if a = strings.TrimSpace(a); a != "" {
				out = append(out, a)
			}
		}
		return out
	}
	if attrs := split(attributes); len(attrs) > 0 {
		out := map[string]any{}
		for _, k := range []string{"id", "schemas"} {
			if v, ok := doc[k]; ok {
				out[k] = v
			}
		}
		for _, a := range attrs {
			copyAttr(doc, out, a)
		}
		return out
	}
	for _, a := range split(excluded) {
		if strings.EqualFold(a, "id") || strings.EqualFold(a, "schemas") {
			continue
		}
		uri, rest := splitURN(a)
		c := container(doc, uri)
		if c == nil {
			continue
		}
		name, sub, _ := strings.Cut(rest, ".")
		if sub != "" {
			if obj := GetObject(c, name); obj != nil {
				del(obj, sub)
			}
			continue
		}
		del(c, name)
	}
	return doc
}

// splitURN splits "urn:…:User:employeeNumber" into the URN and the
// attribute; a plain attribute has no URN.
func splitURN(a string) (string, string) {
	for _, s := range []string{SchemaEnterprise, SchemaUser, SchemaGroup} {
		if len(a) > len(s) && strings.EqualFold(a[:len(s)], s) && a[len(s)] == ':' {
			return s, a[len(s)+1:]
		}
	}
	return "", a
}

func copyAttr(from, to map[string]any, a string) {
	if strings.EqualFold(a, SchemaEnterprise) {
		if v, ok := Get(from, SchemaEnterprise); ok {
			to[SchemaEnterprise] = v
		}
		return
	}
	uri, rest := splitURN(a)
	src, dst := container(from, uri), to
	if uri == SchemaEnterprise {
		if src == nil {
			return
		}
		obj, _ := to[SchemaEnterprise].(map[string]any)
		if obj == nil {
			obj = map[string]any{}
			to[SchemaEnterprise] = obj
		}
		dst = obj
	}
	name, sub, _ := strings.Cut(rest, ".")
	for k, v := range src {
		if !strings.EqualFold(k, name) {
			continue
		}
		if sub == "" {
			dst[k] = v
			return
		}
		if obj, ok := v.(map[string]any); ok {
			part, _ := dst[k].(map[string]any)
			if part == nil {
				part = map[string]any{}
				dst[k] = part
			}
			for sk, sv := range obj {
				if strings.EqualFold(sk, sub) {
					part[sk] = sv
				}
			}
		}
		if list, ok := v.([]any); ok { // emails.value
			var parts []any
			for _, el := range list {
				if m, ok := el.(map[string]any); ok {
					p := map[string]any{}
					for sk, sv := range m {
						if strings.EqualFold(sk, sub) {
							p[sk] = sv
						}
					}
					parts = append(parts, p)
				}
			}
			dst[k] = parts
		}
		return
	}
}

// ErrNotSCIMBoolean names a bad active value.
var ErrNotSCIMBoolean = errors.New("active must be true or false")
