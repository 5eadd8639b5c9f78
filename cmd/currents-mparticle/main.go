// Command currents-mparticle is a Benthos distribution with the Braze
// Currents and mParticle plugins of this project and the stock components a
// Currents user needs (files, AWS, GCP, Azure, Kafka, Redis, Prometheus,
// OpenTelemetry). It takes Benthos's CLI: -c, lint, test, list, blobl, echo.
package main

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"

	"github.com/benthosdev/benthos/v4/public/service"

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

// Set at build time: -ldflags "-X main.version=v1.2.3 -X main.dateBuilt=2026-11-28T10:00:00Z".
var (
	version   = ""
	dateBuilt = ""
)

func main() {
	// Benthos's own --version reports Benthos's module version; ours says
	// which build of this distribution runs, and on which Benthos.
	if len(os.Args) == 2 && (os.Args[1] == "--version" || os.Args[1] == "-v") {
		fmt.Print(versionText())
		return
	}
	service.RunCLI(context.Background())
}

func versionText() string {
	v, built, benthos := version, dateBuilt, "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, d := range info.Deps {
			if d.Path == "github.com/benthosdev/benthos/v4" {
				benthos = d.Version
			}
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" && v == "" {
				v = "dev-" + s.Value
			}
			if s.Key == "vcs.time" && built == "" {
				built = s.Value
			}
		}
	}
	if v == "" {
		v = "dev"
	}
	if built == "" {
		built = "unknown"
	}
	return fmt.Sprintf("currents-mparticle %s\nBuilt: %s\nBenthos: %s\n", v, built, benthos)
}
