package cnosdbdev

import (
	"fmt"
	"net/http"
)

// Modes accepted by Options.Mode.
const (
	Mode24 = "2.4" // CnosDB 2.4.3 (the default)
	Mode23 = "2.3" // CnosDB 2.3.4–2.3.5 (LTS/2.3)
)

// behaviour gathers everything that differs between the emulated versions
// and every answer that was inferred from CnosDB's code paths rather than
// read from its tests or seen on a running server. To change how the
// emulator answers in such a case, change it here.
type behaviour struct {
	mode string

	// version is the "version" member of the ping answer, without the
	// build details.
	version string

	// contentEncodings are the accepted Content-Encoding values and
	// Accept-Encoding tokens (exact, case-sensitive), in CnosDB's order.
	contentEncodings []string

	parseLines func(data []byte, defaultTime int64) ([]Line, error)

	// lossyUTF8: 2.3 decodes the body with from_utf8_lossy; 2.4.1+ refuses
	// invalid UTF-8 with 040015.
	lossyUTF8 bool

	// emptyParseErrors: 2.3.x (and 2.4.0) map line-protocol, decoding and
	// UTF-8 errors to 500 with an empty body; 2.4.1+ to 422/400 JSON.
	emptyParseErrors bool

	// ttlEveryPoint: 2.3 refuses every point older than now-TTL; 2.4 only
	// points that would need a new bucket.
	ttlEveryPoint bool

	// countStarCountsOverwrites: 2.4.3 may answer COUNT(*) from storage
	// statistics that still count overwritten points; exact_count(*)
	// deduplicates. The emulator always shows the statistics answer
	// (inferred: on a real server it depends on compaction).
	countStarCountsOverwrites bool

	// exactCount: exact_count(*) exists from 2.4.3 on.
	exactCount bool
}

var (
	behaviour24 = &behaviour{
		mode:                      Mode24,
		version:                   "2.4.3",
		contentEncodings:          []string{"gzip", "deflate", "br", "zstd", "snappy", "lz4", "identity"},
		parseLines:                parseLines243,
		countStarCountsOverwrites: true,
		exactCount:                true,
	}
	behaviour23 = &behaviour{
		mode:             Mode23,
		version:          "2.3.5",
		contentEncodings: []string{"gzip", "deflate", "br", "zstd", "identity"},
		parseLines:       parseLines23,
		lossyUTF8:        true,
		emptyParseErrors: true,
		ttlEveryPoint:    true,
	}
)

func behaviourFor(mode string) (*behaviour, error) {
	switch mode {
	case "", Mode24, "2.4.3":
		return behaviour24, nil
	case Mode23, "2.3.5":
		return behaviour23, nil
	}
	return nil, fmt.Errorf("unknown CnosDB mode %q (want %q or %q)", mode, Mode24, Mode23)
}

// pingVersion is the "version" member of the ping answer. 2.4.3.x prints
// "2.4.3, revision: <git>, build_time: <rfc3339>"; LTS/2.3 prints
// "2.3.5, revision <git>".
func (b *behaviour) pingVersion(buildTime string) string {
	if b.mode == Mode23 {
		return b.version + ", revision dev"
	}
	return b.version + ", revision: dev, build_time: " + buildTime
}

func (b *behaviour) acceptsEncoding(name string) bool {
	for _, e := range b.contentEncodings {
		if e == name {
			return true
		}
	}
	return false
}

// missingContentLength answers a body sent without Content-Length
// (chunked). Inferred: warp's content_length_limit rejects it with
// LengthRequired, which CnosDB's handle_rejection does not map, so the
// answer is the generic 500 with an empty body.
func (b *behaviour) missingContentLength() *apiError {
	return errUnhandledRejection
}

func (b *behaviour) lineProtocolError(e *ParseError) *apiError {
	if e.Crash {
		return errHandlerPanic
	}
	if b.emptyParseErrors {
		return errUnhandledRejection
	}
	return errParseLineProtocol(e.Message)
}

func (b *behaviour) invalidUTF8() *apiError {
	return errInvalidUTF8()
}

func (b *behaviour) decodeError(reason string) *apiError {
	if b.emptyParseErrors {
		return errUnhandledRejection
	}
	return errDecodeRequest(reason)
}

// columnTypeConflict answers a field whose type differs from the existing
// column (or a tag that is a field, or the reverse). 2.4 (inferred): the
// tskv ColumnTypeError travels back through the raft apply as a
// coordinator CommonError. 2.3 (inferred): tskv SchemaError::FieldType.
func (b *behaviour) columnTypeConflict(column, found, expected string) *apiError {
	if b.mode == Mode23 {
		return newAPIError(http.StatusUnprocessableEntity, "020004", "DataSchemaError: unrecognized field type "+column)
	}
	return errCoordinator(fmt.Sprintf("Apply engine failed: DataSchemaError: Column '%s' type error, found %s expected %s",
		column, found, expected))
}

// batchTypeConflict answers one column getting values of two types inside
// one request. 2.4 (read): line_to_batches in the coordinator. 2.3
// (inferred): the points reach tskv one by one and the later one fails
// the schema check.
func (b *behaviour) batchTypeConflict(column, expected string) *apiError {
	if b.mode == Mode23 {
		return newAPIError(http.StatusUnprocessableEntity, "020004", "DataSchemaError: unrecognized field type "+column)
	}
	return errCoordinator("line to batch error: " + expected)
}

// fieldsEmpty answers a line the parser accepted without any field
// ("m f=" at the very end of a body). Inferred: tskv's FieldsIsEmpty
// wrapped like the column type error.
func (b *behaviour) fieldsEmpty() *apiError {
	if b.mode == Mode23 {
		return newAPIError(http.StatusUnprocessableEntity, "020002", "Fields can't be empty")
	}
	return errCoordinator("Apply engine failed: Fields can't be empty")
}

// expiredPoint answers a point older than now-TTL.
func (b *behaviour) expiredPoint() *apiError {
	if b.mode == Mode23 {
		return errCoordinator("write expired time data not permit")
	}
	return errCreateExpiredBucket()
}

// strictWriteMissingTable and strictWriteMissingColumn answer writes that
// STRICT_WRITE databases refuse (inferred from tskv's SchemaError).
func (b *behaviour) strictWriteMissingTable(db, table string) *apiError {
	return errCoordinator(fmt.Sprintf("Apply engine failed: DataSchemaError: table '%s.%s' not found", db, table))
}

func (b *behaviour) strictWriteMissingColumn(column string) *apiError {
	return errCoordinator(fmt.Sprintf("Apply engine failed: DataSchemaError: field %s not found", column))
}

// exactCountMissing answers exact_count(*) on versions before 2.4.3
// (inferred DataFusion planning error).
func (b *behaviour) exactCountMissing() *apiError {
	return errPlanning("Invalid function 'exact_count'")
}
