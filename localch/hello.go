package localch

import (
	"strconv"

	chproto "github.com/ClickHouse/ch-go/proto"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/ClickHouse/clickhouse-go/v2/lib/proto"
)

// helloQuery is what clickhouse-go sends over HTTP to learn the server.
const helloQuery = "SELECT displayName(), version(), revision(), timezone()"

// hello answers clickhouse-go's hello query. The driver decodes this one
// answer at its own protocol revision (client_protocol_version) and every
// later one at the revision the answer reports. The engine writes Native
// blocks without the revision-dependent parts (block info, serialisation
// kinds), so the answer reports revision 0, and is itself encoded at the
// client's revision by the driver's own block encoder.
func (s *Server) hello(clientRevision string) ([]byte, error) {
	rev, _ := strconv.ParseUint(clientRevision, 10, 64)
	var block proto.Block
	for _, c := range []struct{ name, typ string }{
		{"displayName()", "String"}, {"version()", "String"}, {"revision()", "UInt32"}, {"timezone()", "String"},
	} {
		if err := block.AddColumn(c.name, column.Type(c.typ)); err != nil {
			return nil, err
		}
	}
	if err := block.Append(s.displayName, s.version, uint32(0), s.timezone); err != nil {
		return nil, err
	}
	var buf chproto.Buffer
	if err := block.Encode(&buf, rev); err != nil {
		return nil, err
	}
	return buf.Buf, nil
}
