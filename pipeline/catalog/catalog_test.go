package catalog_test

import (
	"strings"
	"testing"

	"github.com/seatflow/seatflow/pipeline/catalog"
	"github.com/seatflow/seatflow/schemas"
)

// TestShippedCatalogHasSpecSKUs checks the SKUs SPEC §1 fixes, exactly.
func TestShippedCatalogHasSpecSKUs(t *testing.T) {
	c, err := catalog.Load(schemas.Catalog)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"O365_E1":               "Office 365|exchange,sharepoint,teams,yammer",
		"O365_E3":               "Office 365|exchange,sharepoint,teams,yammer,office_apps",
		"O365_E5":               "Office 365|exchange,sharepoint,teams,yammer,office_apps",
		"M365_BUSINESS_BASIC":   "Office 365|exchange,sharepoint,teams",
		"M365_BUSINESS_PREMIUM": "Office 365|exchange,sharepoint,teams,office_apps",
		"EXCHANGE_ONLINE_P1":    "Office 365|exchange",
		"D365_SALES":            "Dynamics 365|dynamics_sales",
		"D365_CUSTOMER_SERVICE": "Dynamics 365|dynamics_customer_service",
	}
	for name, w := range want {
		s, ok := c.SKU(name)
		if !ok {
			t.Errorf("SKU %s missing", name)
			continue
		}
		if got := s.Product + "|" + strings.Join(s.Workloads, ","); got != w {
			t.Errorf("SKU %s: %s, want %s", name, got, w)
		}
	}
	if c.Canonical("onedrive") != "sharepoint" || c.Canonical("teams") != "teams" || c.Canonical("new_thing") != "new_thing" {
		t.Errorf("aliases wrong")
	}
}

func TestInvalidCatalogsSayWhatToFix(t *testing.T) {
	cases := []struct{ json, want string }{
		{`{"skus":[]}`, "no SKUs"},
		{`{"skus":[{"sku":"A","product":"Office 365","workloads":["x"]},{"sku":"A","product":"Office 365","workloads":["x"]}]}`, "listed twice"},
		{`{"skus":[{"sku":"A","product":"Azure","workloads":["x"]}]}`, "product \"Azure\""},
		{`{"skus":[{"sku":"A","product":"Office 365","workloads":[]}]}`, "no workloads"},
		{`{"skus":[{"sku":"A","product":"Office 365","workloads":["Teams"]}]}`, "lowercase"},
		{`{"skus":[{"sku":"A","product":"Office 365","workloads":["all"]}]}`, "reserved"},
		{`{"aliases":{"od":"nope"},"skus":[{"sku":"A","product":"Office 365","workloads":["x"]}]}`, "which no SKU has"},
		{`{"aliases":{"x":"x"},"skus":[{"sku":"A","product":"Office 365","workloads":["x"]}]}`, "both a workload and an alias"},
		{`{"skus":[{"sku":"A","product":"Office 365","workloads":["x"],"extra":1}]}`, "unknown field"},
	}
	for _, c := range cases {
		t.Run(c.want, func(t *testing.T) {
			if _, err := catalog.Load([]byte(c.json)); err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: error %v, want it to mention %q", c.json, err, c.want)
			}
		})
	}
}
