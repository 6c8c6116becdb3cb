// Command mmconfig reads a ModelMesh Serving user configuration with ModelMesh's own code.
//
// modelplane writes ModelMesh's user ConfigMap (model-serving-config, key config.yaml). The
// controller reads it with pkg/config.NewMergedConfigFromString (viper over the defaults in
// config/default/config-defaults.yaml, then its own validations) and silently ignores keys its
// Config struct does not have. This program runs that same function on a configuration, and
// decodes it once more with mapstructure's "error on unused keys" into the same struct, so that
// a key ModelMesh would ignore is reported instead of silently dropped.
//
// Input (stdin): the config.yaml text. Output (stdout): JSON
// {"error": string, "unknown": [key...], "config": Config} where "error" is what ModelMesh's
// loader returns ("" when it accepts the configuration) and "config" the merged result.
// Exit 0 whenever the output was written; 2 when stdin cannot be read.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"

	"github.com/kserve/modelmesh-serving/pkg/config"
	"github.com/spf13/viper"
)

type result struct {
	Error   string         `json:"error"`
	Unknown []string       `json:"unknown"`
	Config  *config.Config `json:"config"`
}

// mapstructure reports unused keys as `... has invalid keys: a, b` (one line per nested struct).
var invalidKeys = regexp.MustCompile(`'([^']*)' has invalid keys: (.*)`)

func unknownKeys(text string) ([]string, error) {
	v := viper.NewWithOptions(viper.KeyDelimiter(config.ViperKeyDelimiter))
	v.SetConfigType(config.ConfigType)
	if err := v.ReadConfig(strings.NewReader(text)); err != nil {
		return nil, err
	}
	var c config.Config
	err := v.UnmarshalExact(&c)
	if err == nil {
		return []string{}, nil
	}
	keys := []string{}
	for _, match := range invalidKeys.FindAllStringSubmatch(err.Error(), -1) {
		for _, key := range strings.Split(match[2], ", ") {
			if match[1] != "" {
				key = match[1] + "." + key
			}
			keys = append(keys, key)
		}
	}
	if len(keys) == 0 {
		return nil, err
	}
	sort.Strings(keys)
	return keys, nil
}

func main() {
	text, err := io.ReadAll(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mmconfig: cannot read stdin:", err)
		os.Exit(2)
	}
	out := result{Unknown: []string{}}
	merged, err := config.NewMergedConfigFromString(string(text))
	if err != nil {
		out.Error = err.Error()
	} else {
		out.Config = merged
	}
	if keys, err := unknownKeys(string(text)); err != nil {
		out.Error = strings.TrimSpace(out.Error + " " + err.Error())
	} else {
		out.Unknown = keys
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fmt.Fprintln(os.Stderr, "mmconfig:", err)
		os.Exit(2)
	}
}
