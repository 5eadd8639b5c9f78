// Package distribution registers every component of the currents-mparticle
// distribution when imported: this project's Braze Currents and mParticle
// components and the stock Benthos ones a Currents user needs (files, AWS,
// GCP, Azure, Kafka, Redis, Prometheus, OpenTelemetry). The binary
// (cmd/currents-mparticle), the progress report (cmd/currents-report) and
// the docs' snippet checks import it, so a config that runs in one parses in
// the others.
package distribution

import (
	// Stock components, imported one by one: public/components/all pulls
	// modules this project does not need.
	_ "github.com/benthosdev/benthos/v4/public/components/aws"
	_ "github.com/benthosdev/benthos/v4/public/components/azure"
	_ "github.com/benthosdev/benthos/v4/public/components/gcp"
	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/kafka"
	_ "github.com/benthosdev/benthos/v4/public/components/otlp"
	_ "github.com/benthosdev/benthos/v4/public/components/prometheus"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
	_ "github.com/benthosdev/benthos/v4/public/components/redis"

	_ "github.com/currents-mparticle/currents-mparticle/plugins/components/currents"
	_ "github.com/currents-mparticle/currents-mparticle/plugins/components/mparticle"
)
