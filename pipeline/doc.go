// Package pipeline is seatflow's streaming core. Its subpackages hold one
// stage each: fetch (reading Kafka partitions' records), event (decoding
// and validation of SPEC §2 events), catalog (the SKU catalog), figures
// (the deterministic state and snapshot logic of SPEC §3–§5, no I/O),
// runner (the running pipeline around them), simulate (sample data) and
// reference (an obviously-correct model of the figures that the tests
// compare the core against).
package pipeline
