// Command psa evaluates pod specs with Kubernetes' own Pod Security admission checks.
//
// modelplane has no API server to admit its pods, so its tests ask the same code the
// API server runs (k8s.io/pod-security-admission's policy evaluator, at the version of
// the Kubernetes release the stacks pin) whether each pod template would be admitted
// under the "baseline" and "restricted" levels.
//
// Input (stdin): a JSON array of {"id": string, "metadata": ObjectMeta, "spec": PodSpec}.
// Output (stdout): a JSON array, in input order, of
// {"id", "baseline": [violation...], "restricted": [violation...]}, where a violation is
// {"reason", "detail"} (the evaluator's ForbiddenReason and ForbiddenDetail) and an empty list means admitted.
// Flag -version selects the policy version ("v1.33"; "latest" for the newest checks).
// Bad input exits 2 with one line on stderr naming the item.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

type item struct {
	ID       string          `json:"id"`
	Metadata json.RawMessage `json:"metadata"`
	Spec     json.RawMessage `json:"spec"`
}

type violation struct {
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

type verdict struct {
	ID         string      `json:"id"`
	Baseline   []violation `json:"baseline"`
	Restricted []violation `json:"restricted"`
}

// strict decodes one JSON value into out, refusing fields the Kubernetes type does not have,
// so a misspelt field is an error rather than a silently admitted pod.
func strict(data json.RawMessage, out any) error {
	if len(data) == 0 {
		return nil
	}
	decoder := json.NewDecoder(bytes.NewReader(data))
	decoder.DisallowUnknownFields()
	return decoder.Decode(out)
}

func evaluate(evaluator policy.Evaluator, level api.Level, version api.Version, meta *metav1.ObjectMeta, spec *corev1.PodSpec) []violation {
	result := []violation{}
	checks := evaluator.EvaluatePod(api.LevelVersion{Level: level, Version: version}, meta, spec)
	for _, check := range checks {
		if !check.Allowed {
			result = append(result, violation{Reason: check.ForbiddenReason, Detail: check.ForbiddenDetail})
		}
	}
	return result
}

func run(stdin io.Reader, stdout io.Writer, versionFlag string) error {
	version, err := api.ParseVersion(versionFlag)
	if err != nil {
		return fmt.Errorf("-version: %w", err)
	}
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		return err
	}
	var items []item
	if err := json.NewDecoder(stdin).Decode(&items); err != nil {
		return fmt.Errorf("stdin: not a JSON array of pods: %w", err)
	}
	verdicts := make([]verdict, 0, len(items))
	for i, it := range items {
		var meta metav1.ObjectMeta
		var spec corev1.PodSpec
		if err := strict(it.Metadata, &meta); err != nil {
			return fmt.Errorf("stdin: [%d] %q: metadata: %w", i, it.ID, err)
		}
		if err := strict(it.Spec, &spec); err != nil {
			return fmt.Errorf("stdin: [%d] %q: spec: %w", i, it.ID, err)
		}
		verdicts = append(verdicts, verdict{
			ID:         it.ID,
			Baseline:   evaluate(evaluator, api.LevelBaseline, version, &meta, &spec),
			Restricted: evaluate(evaluator, api.LevelRestricted, version, &meta, &spec),
		})
	}
	encoder := json.NewEncoder(stdout)
	encoder.SetIndent("", " ")
	return encoder.Encode(verdicts)
}

func main() {
	versionFlag := flag.String("version", "latest", `Pod Security policy version, "v1.33" or "latest"`)
	flag.Parse()
	if err := run(os.Stdin, os.Stdout, *versionFlag); err != nil {
		fmt.Fprintln(os.Stderr, "psa:", err)
		os.Exit(2)
	}
}
