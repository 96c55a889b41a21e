package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/seatflow/seatflow/insights/access"
)

// tokenCommands declares token create, revoke and list; it returns what
// each runs, by name.
func tokenCommands(app *kingpin.Application) map[string]func(context.Context) error {
	cmd := app.Command("token", "Manage the portal's access tokens.")
	// the flag (and SEATFLOW_WEB_TOKENS_FILE) of seatflow serve: one
	// setting names the file for both
	tokensFile := func(c *kingpin.CmdClause) *string {
		return c.Flag("web.tokens-file", "Token file that seatflow serve reads.").Default("seatflow-tokens").String()
	}
	create := cmd.Command("create", "Make a token for a partner and a role; prints it once and appends its hash to the token file.")
	file := tokensFile(create)
	partner := create.Flag("partner", "The partner_id whose customers the token sees (any for --role analyst).").Default("").String()
	role := create.Flag("role", "Role: "+strings.Join(access.Roles, ", ")+" (analyst sees every partner).").Required().String()

	revoke := cmd.Command("revoke", "Remove a token from the token file; a running seatflow serve refuses it at once.")
	rfile := tokensFile(revoke)
	id := revoke.Flag("id", "The token's ID (seatflow token list).").Required().String()

	list := cmd.Command("list", "List the tokens of the token file: ID, partner, role, made.")
	lfile := tokensFile(list)

	return map[string]func(context.Context) error{
		create.FullCommand(): func(context.Context) error {
			token, g, err := access.Create(*file, *partner, *role)
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stderr, "token %s for %s (%s) appended to %s; it is shown once:\n", g.ID, orAll(g.Partner), g.Role, *file)
			fmt.Println(token)
			return nil
		},
		revoke.FullCommand(): func(context.Context) error {
			if err := access.Revoke(*rfile, *id); err != nil {
				return err
			}
			fmt.Printf("token %s revoked\n", *id)
			return nil
		},
		list.FullCommand(): func(context.Context) error {
			gs, err := access.List(*lfile)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tPARTNER\tROLE\tMADE")
			for _, g := range gs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", g.ID, orAll(g.Partner), g.Role, g.Created.Format(time.RFC3339))
			}
			return tw.Flush()
		},
	}
}

func orAll(partner string) string {
	if partner == "" {
		return "every partner"
	}
	return partner
}
