// Command schemagen writes the schema and Terraform mapping the provider embeds, from the
// schema.json and terraform-mapping.json of the upstream module, as upstream's
// provider/cmd/pulumi-resource-kubernetes/generate.go does for a release: the schema gets the
// release version and both are re-serialised compactly.
//
// Usage: schemagen UPSTREAM_CMD_DIR VERSION OUT_DIR
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	if len(os.Args) != 4 {
		fail(fmt.Errorf("usage: schemagen UPSTREAM_CMD_DIR VERSION OUT_DIR"))
	}
	source, version, out := os.Args[1], os.Args[2], os.Args[3]

	var spec schema.PackageSpec
	read(filepath.Join(source, "schema.json"), &spec)
	spec.Version = version
	write(filepath.Join(out, "schema-embed.json"), spec)

	var mapping any
	read(filepath.Join(source, "terraform-mapping.json"), &mapping)
	write(filepath.Join(out, "terraform-mapping-embed.json"), mapping)
}

func read(path string, into any) {
	data, err := os.ReadFile(path)
	if err != nil {
		fail(err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		fail(fmt.Errorf("%s: %w", path, err))
	}
}

func write(path string, value any) {
	data, err := json.Marshal(value)
	if err != nil {
		fail(fmt.Errorf("%s: %w", path, err))
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "schemagen: %v\n", err)
	os.Exit(1)
}
