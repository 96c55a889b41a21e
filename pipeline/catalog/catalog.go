// Package catalog loads and validates the SKU catalog (schemas/catalog.json):
// which workloads belong to which SKU, the SKU's product family, and
// workload aliases.
package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"iter"
	"maps"
	"regexp"
	"sort"
)

// Product families a SKU may belong to.
var Products = []string{"Office 365", "Dynamics 365"}

// SKU is one licensable product.
type SKU struct {
	Name      string   `json:"sku"`
	Product   string   `json:"product"`
	Workloads []string `json:"workloads"`
}

// Catalog is a validated SKU catalog.
type Catalog struct {
	skus      map[string]*SKU
	aliases   map[string]string
	workloads []string // every workload some SKU has, sorted
}

type file struct {
	Comment string            `json:"comment"`
	Aliases map[string]string `json:"aliases"`
	SKUs    []*SKU            `json:"skus"`
}

var workloadName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// Load parses and validates a catalog; errors name what to fix.
func Load(data []byte) (*Catalog, error) {
	var f file
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("SKU catalog: %w", err)
	}
	c := &Catalog{skus: map[string]*SKU{}, aliases: map[string]string{}}
	if len(f.SKUs) == 0 {
		return nil, fmt.Errorf("SKU catalog: no SKUs")
	}
	all := map[string]bool{}
	for i, s := range f.SKUs {
		if s.Name == "" {
			return nil, fmt.Errorf("SKU catalog: SKU #%d has no name", i+1)
		}
		if c.skus[s.Name] != nil {
			return nil, fmt.Errorf("SKU catalog: SKU %s is listed twice", s.Name)
		}
		known := false
		for _, p := range Products {
			known = known || p == s.Product
		}
		if !known {
			return nil, fmt.Errorf("SKU catalog: SKU %s: product %q is not one of %q", s.Name, s.Product, Products)
		}
		if len(s.Workloads) == 0 {
			return nil, fmt.Errorf("SKU catalog: SKU %s has no workloads", s.Name)
		}
		seen := map[string]bool{}
		for _, w := range s.Workloads {
			if !workloadName.MatchString(w) {
				return nil, fmt.Errorf("SKU catalog: SKU %s: workload %q must be lowercase letters, digits and _", s.Name, w)
			}
			if w == "all" {
				return nil, fmt.Errorf("SKU catalog: SKU %s: 'all' is reserved for the SKU as a whole", s.Name)
			}
			if seen[w] {
				return nil, fmt.Errorf("SKU catalog: SKU %s lists workload %s twice", s.Name, w)
			}
			seen[w] = true
			all[w] = true
		}
		c.skus[s.Name] = s
	}
	for alias, target := range f.Aliases {
		if !workloadName.MatchString(alias) {
			return nil, fmt.Errorf("SKU catalog: alias %q must be lowercase letters, digits and _", alias)
		}
		if all[alias] {
			return nil, fmt.Errorf("SKU catalog: %s is both a workload and an alias", alias)
		}
		if !all[target] {
			return nil, fmt.Errorf("SKU catalog: alias %s points to %s, which no SKU has", alias, target)
		}
		c.aliases[alias] = target
	}
	for _, s := range f.SKUs {
		for _, w := range s.Workloads {
			if _, isAlias := c.aliases[w]; isAlias {
				return nil, fmt.Errorf("SKU catalog: SKU %s lists alias %s; list %s", s.Name, w, c.aliases[w])
			}
		}
	}
	for w := range all {
		c.workloads = append(c.workloads, w)
	}
	sort.Strings(c.workloads)
	return c, nil
}

// SKU looks a SKU up.
func (c *Catalog) SKU(name string) (*SKU, bool) {
	s, ok := c.skus[name]
	return s, ok
}

// Canonical is the workload an activity counts as: its alias target, or
// itself.
func (c *Catalog) Canonical(workload string) string {
	if t, ok := c.aliases[workload]; ok {
		return t
	}
	return workload
}

// Aliases yields each alias and the workload it names.
func (c *Catalog) Aliases() iter.Seq2[string, string] { return maps.All(c.aliases) }

// Workloads lists every workload of the catalog's SKUs, sorted.
func (c *Catalog) Workloads() []string { return c.workloads }

// SKUs lists the SKU names, sorted.
func (c *Catalog) SKUs() []string {
	names := make([]string, 0, len(c.skus))
	for n := range c.skus {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
