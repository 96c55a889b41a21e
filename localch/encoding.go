package localch

import (
	"compress/gzip"
	"compress/zlib"
	"errors"
	"io"
	"net/http"
	"strings"

	chcompress "github.com/ClickHouse/ch-go/compress"
	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// decodeBody undoes the request's Content-Encoding and, with decompress=1,
// ClickHouse's own compressed frames (what clickhouse-go sends for LZ4/ZSTD).
func decodeBody(r *http.Request, framed bool) (io.Reader, error) {
	var body io.Reader = r.Body
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity", "none":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, &Exception{Code: codeCannotDecompress, Message: "gzip body: " + err.Error()}
		}
		body = zr
	case "deflate":
		zr, err := zlib.NewReader(body)
		if err != nil {
			return nil, &Exception{Code: codeCannotDecompress, Message: "deflate body: " + err.Error()}
		}
		body = zr
	case "br":
		body = brotli.NewReader(body)
	case "zstd":
		zr, err := zstd.NewReader(body)
		if err != nil {
			return nil, &Exception{Code: codeCannotDecompress, Message: "zstd body: " + err.Error()}
		}
		body = zr.IOReadCloser()
	case "lz4":
		body = lz4.NewReader(body)
	default:
		return nil, &Exception{Code: codeUnknownFormat, Message: "Unknown HTTP Content-Encoding '" + enc + "'"}
	}
	if framed {
		body = framedReader{chcompress.NewReader(body)}
	}
	return body, nil
}

// framedReader reports the clean end of a framed stream as io.EOF: ch-go's
// reader wraps it ("header: EOF"), which io.Copy would take for an error.
// A stream cut inside a frame still fails (io.ErrUnexpectedEOF).
type framedReader struct{ r io.Reader }

func (f framedReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err != nil && err != io.EOF && errors.Is(err, io.EOF) {
		err = io.EOF
	}
	return n, err
}

// frameSize bounds one compressed frame, as a server's 1 MiB blocks do.
const frameSize = 1 << 20

// writeBody sends the result, in ClickHouse's compressed frames with
// compress=1, else with the HTTP encoding the client accepts when it asked
// for enable_http_compression=1, as a server does.
func writeBody(w http.ResponseWriter, r *http.Request, q *request, out []byte) error {
	if q.compress {
		method := chcompress.LZ4
		if q.method == "ZSTD" {
			method = chcompress.ZSTD
		}
		cw := chcompress.NewWriter(chcompress.LevelZero, method)
		var framed []byte
		for start := 0; start < len(out); start += frameSize {
			end := min(start+frameSize, len(out))
			if err := cw.Compress(out[start:end]); err != nil {
				return err
			}
			framed = append(framed, cw.Data...)
		}
		out = framed
	} else if r.URL.Query().Get("enable_http_compression") == "1" {
		if enc, wc := responseEncoder(r.Header.Get("Accept-Encoding"), w); wc != nil {
			w.Header().Set("Content-Encoding", enc)
			if _, err := wc.Write(out); err != nil {
				return err
			}
			return wc.Close()
		}
	}
	_, err := w.Write(out)
	return err
}

func responseEncoder(accept string, w io.Writer) (string, io.WriteCloser) {
	for _, part := range strings.Split(accept, ",") {
		enc, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		switch strings.ToLower(enc) {
		case "gzip":
			return "gzip", gzip.NewWriter(w)
		case "deflate":
			return "deflate", zlib.NewWriter(w)
		case "br":
			return "br", brotli.NewWriter(w)
		case "zstd":
			zw, err := zstd.NewWriter(w)
			if err == nil {
				return "zstd", zw
			}
		case "lz4":
			return "lz4", lz4.NewWriter(w)
		}
	}
	return "", nil
}
