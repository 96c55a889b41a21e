package event

// Default topic names of SPEC §2: license changes (subscription and
// assignment events), usage, and the rejected events.
const (
	LicenseTopic    = "seatflow.license-events"
	UsageTopic      = "seatflow.usage-events"
	DeadLetterTopic = "seatflow.dead-letter"
)

// Topics are the three default topics.
var Topics = []string{LicenseTopic, UsageTopic, DeadLetterTopic}
