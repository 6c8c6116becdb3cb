// Command kserve-webhook runs KServe's own admission validators, at the KServe version the
// stacks pin, on objects modelplane renders, without an API server.
//
// It reads a JSON array of objects on stdin and writes one verdict per object on stdout: the
// InferenceService, InferenceGraph and LLMInferenceService validating webhooks are called as the
// API server would call them on create; the ServingRuntime and ClusterServingRuntime webhooks
// are called with a fake client that holds every runtime of the input, so priority conflicts
// between runtimes are found as in a cluster holding all of them. Every object is decoded
// strictly first: a field KServe's Go types do not have is reported, as a server with strict
// field validation would.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
	sigsjson "sigs.k8s.io/json"

	"github.com/kserve/kserve/pkg/apis/serving/v1alpha1"
	"github.com/kserve/kserve/pkg/apis/serving/v1alpha2"
	"github.com/kserve/kserve/pkg/apis/serving/v1beta1"
	"github.com/kserve/kserve/pkg/webhook/admission/servingruntime"
)

type header struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
}

type verdict struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace"`
	Name       string   `json:"name"`
	Checked    bool     `json:"checked"`
	Allowed    bool     `json:"allowed"`
	Message    string   `json:"message"`
	Warnings   []string `json:"warnings"`
}

// strict decodes as the API server does with strict field validation: case-sensitive field
// names, no unknown or duplicate fields (sigs.k8s.io/json, the decoder Kubernetes uses).
func strict(raw []byte, into any) error {
	strictErrs, err := sigsjson.UnmarshalStrict(raw, into)
	if err != nil {
		return err
	}
	if len(strictErrs) > 0 {
		return errors.Join(strictErrs...)
	}
	return nil
}

type validator interface {
	ValidateCreate(ctx context.Context, obj runtime.Object) (admission.Warnings, error)
}

func validate(ctx context.Context, raw []byte, obj runtime.Object, v validator) (bool, string, []string) {
	if err := strict(raw, obj); err != nil {
		return false, "strict decoding: " + err.Error(), nil
	}
	warnings, err := v.ValidateCreate(ctx, obj)
	if err != nil {
		return false, err.Error(), warnings
	}
	return true, "", warnings
}

func handle(ctx context.Context, raw []byte, h header, obj runtime.Object, handler admission.Handler) (bool, string) {
	if err := strict(raw, obj); err != nil {
		return false, "strict decoding: " + err.Error()
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Operation: admissionv1.Create,
		Name:      h.Metadata.Name,
		Namespace: h.Metadata.Namespace,
		Object:    runtime.RawExtension{Raw: raw},
	}}
	resp := handler.Handle(ctx, req)
	message := ""
	if resp.Result != nil {
		message = resp.Result.Message
	}
	return resp.Allowed, message
}

func main() {
	var objects []json.RawMessage
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintln(os.Stderr, "kserve-webhook: stdin is not a JSON array of objects:", err)
		os.Exit(2)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, v1alpha2.AddToScheme, v1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			fmt.Fprintln(os.Stderr, "kserve-webhook:", err)
			os.Exit(1)
		}
	}
	var existing []client.Object
	for _, raw := range objects {
		var h header
		_ = json.Unmarshal(raw, &h)
		switch h.Kind {
		case "ServingRuntime":
			sr := &v1alpha1.ServingRuntime{}
			if json.Unmarshal(raw, sr) == nil {
				existing = append(existing, sr)
			}
		case "ClusterServingRuntime":
			csr := &v1alpha1.ClusterServingRuntime{}
			if json.Unmarshal(raw, csr) == nil {
				existing = append(existing, csr)
			}
		}
	}
	cluster := fake.NewClientBuilder().WithScheme(scheme).WithObjects(existing...).Build()
	decoder := admission.NewDecoder(scheme)
	ctx := context.Background()
	verdicts := make([]verdict, 0, len(objects))
	for _, raw := range objects {
		var h header
		if err := json.Unmarshal(raw, &h); err != nil {
			fmt.Fprintln(os.Stderr, "kserve-webhook: not an object:", err)
			os.Exit(2)
		}
		v := verdict{APIVersion: h.APIVersion, Kind: h.Kind, Namespace: h.Metadata.Namespace, Name: h.Metadata.Name, Checked: true}
		switch {
		case h.Kind == "InferenceService" && h.APIVersion == "serving.kserve.io/v1beta1":
			v.Allowed, v.Message, v.Warnings = validate(ctx, raw, &v1beta1.InferenceService{}, &v1beta1.InferenceServiceValidator{})
		case h.Kind == "InferenceGraph" && h.APIVersion == "serving.kserve.io/v1alpha1":
			v.Allowed, v.Message, v.Warnings = validate(ctx, raw, &v1alpha1.InferenceGraph{}, &v1alpha1.InferenceGraphValidator{})
		case h.Kind == "LLMInferenceService" && h.APIVersion == "serving.kserve.io/v1alpha1":
			v.Allowed, v.Message, v.Warnings = validate(ctx, raw, &v1alpha1.LLMInferenceService{}, &v1alpha1.LLMInferenceServiceValidator{})
		case h.Kind == "LLMInferenceService" && h.APIVersion == "serving.kserve.io/v1alpha2":
			v.Allowed, v.Message, v.Warnings = validate(ctx, raw, &v1alpha2.LLMInferenceService{}, &v1alpha2.LLMInferenceServiceValidator{})
		case h.Kind == "ServingRuntime" && h.APIVersion == "serving.kserve.io/v1alpha1":
			v.Allowed, v.Message = handle(ctx, raw, h, &v1alpha1.ServingRuntime{}, &servingruntime.ServingRuntimeValidator{Client: cluster, Decoder: decoder})
		case h.Kind == "ClusterServingRuntime" && h.APIVersion == "serving.kserve.io/v1alpha1":
			v.Allowed, v.Message = handle(ctx, raw, h, &v1alpha1.ClusterServingRuntime{}, &servingruntime.ClusterServingRuntimeValidator{Client: cluster, Decoder: decoder})
		default:
			v.Checked = false
			v.Allowed = true
		}
		if v.Warnings == nil {
			v.Warnings = []string{}
		}
		verdicts = append(verdicts, v)
	}
	out := json.NewEncoder(os.Stdout)
	out.SetIndent("", " ")
	if err := out.Encode(verdicts); err != nil {
		fmt.Fprintln(os.Stderr, "kserve-webhook:", err)
		os.Exit(1)
	}
}
