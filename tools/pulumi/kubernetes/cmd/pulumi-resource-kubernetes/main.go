// Command pulumi-resource-kubernetes is upstream's Kubernetes provider, served by upstream's own
// provider.Serve, with upstream's schema and Terraform mapping embedded.
//
// Upstream's main (provider/cmd/pulumi-resource-kubernetes/main.go of
// github.com/pulumi/pulumi-kubernetes) embeds schema-embed.json and
// terraform-mapping-embed.json, which its release build generates with `go generate` next to
// main.go and which are therefore absent from the published module, so that package cannot be
// built from the module cache. This main is the same program; what differs is only where the
// two files come from: scripts/build_pulumi.py runs ./schemagen on the module's own schema.json
// and terraform-mapping.json (as upstream's generate.go does) into a build directory beside a
// copy of this file, outside the repository, and builds there. The version comes from
// -ldflags, as in upstream's .goreleaser.yml, and names the release tag of the commit built.
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/provider"
	"github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version"
)

//go:embed schema-embed.json
var pulumiSchema []byte

//go:embed terraform-mapping-embed.json
var terraformMapping []byte

func main() {
	provider.Serve("kubernetes", version.Version, pulumiSchema, terraformMapping)
}
