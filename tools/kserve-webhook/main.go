// Command kserve-webhook runs KServe's own admission code, at the KServe version the stacks
// pin, on objects modelplane renders, without an API server.
//
// By default it validates: it reads a JSON array of objects on stdin and writes one verdict per
// object on stdout: the
// InferenceService, InferenceGraph and LLMInferenceService validating webhooks are called as the
// API server would call them on create; the ServingRuntime and ClusterServingRuntime webhooks
// are called with a fake client that holds every runtime of the input, so priority conflicts
// between runtimes are found as in a cluster holding all of them. Every object is decoded
// strictly first: a field KServe's Go types do not have is reported, as a server with strict
// field validation would.
//
// With -resolve it defaults instead: it reads {"objects", "llms", "runtimes", "config"} (InferenceServices,
// the ServingRuntimes and ClusterServingRuntimes of a cluster, and the inferenceservice-config
// ConfigMap) and writes each InferenceService as KServe's defaulting webhook leaves it
// (DefaultInferenceService: legacy framework keys become the model spec, protocol defaults) with
// the runtime KServe's controller selects for it when it names none (ModelSpec.GetSupportingRuntimes
// over those runtimes), and each LLMInferenceService as the v1alpha2 storage version KServe's
// conversion makes of it, so what an upstream sample means can be compared with what modelplane renders.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
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

type resolveInput struct {
	Objects  []json.RawMessage `json:"objects"`
	LLMs     []json.RawMessage `json:"llms"`
	Runtimes []json.RawMessage `json:"runtimes"`
	Config   corev1.ConfigMap  `json:"config"`
}

type convertedLLM struct {
	Object *v1alpha2.LLMInferenceService `json:"object"`
	Error  string                        `json:"error"`
}

type resolveOutput struct {
	Objects []resolved     `json:"objects"`
	LLMs    []convertedLLM `json:"llms"`
}

// convertLLM reads an LLMInferenceService of either served version as the v1alpha2 (storage)
// version, through KServe's own conversion (v1alpha1 llm_inference_service_conversion.go).
func convertLLM(raw []byte) convertedLLM {
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return convertedLLM{Error: err.Error()}
	}
	hub := &v1alpha2.LLMInferenceService{}
	if h.APIVersion == "serving.kserve.io/v1alpha1" {
		old := &v1alpha1.LLMInferenceService{}
		if err := json.Unmarshal(raw, old); err != nil {
			return convertedLLM{Error: err.Error()}
		}
		if err := old.ConvertTo(hub); err != nil {
			return convertedLLM{Error: err.Error()}
		}
		return convertedLLM{Object: hub}
	}
	if err := json.Unmarshal(raw, hub); err != nil {
		return convertedLLM{Error: err.Error()}
	}
	return convertedLLM{Object: hub}
}

type resolved struct {
	Object          *v1beta1.InferenceService `json:"object"`
	SelectedRuntime string                    `json:"selectedRuntime"`
	ServerType      string                    `json:"serverType"`
	Error           string                    `json:"error"`
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kserve-webhook:", err)
	os.Exit(2)
}

func resolve(scheme *runtime.Scheme) {
	var in resolveInput
	if err := json.NewDecoder(os.Stdin).Decode(&in); err != nil {
		fail(fmt.Errorf("stdin is not {objects, runtimes, config}: %w", err))
	}
	isvcConfig, err := v1beta1.NewInferenceServicesConfig(&in.Config)
	if err != nil {
		fail(err)
	}
	deployConfig, err := v1beta1.NewDeployConfig(&in.Config)
	if err != nil {
		fail(err)
	}
	securityConfig, err := v1beta1.NewSecurityConfig(&in.Config)
	if err != nil {
		fail(err)
	}
	var runtimes []client.Object
	annotations := map[string]map[string]string{}
	for _, raw := range in.Runtimes {
		var h header
		if err := json.Unmarshal(raw, &h); err != nil {
			fail(err)
		}
		var obj client.Object
		if h.Kind == "ServingRuntime" {
			obj = &v1alpha1.ServingRuntime{}
		} else {
			obj = &v1alpha1.ClusterServingRuntime{}
		}
		if err := strict(raw, obj); err != nil {
			fail(fmt.Errorf("runtime %s: %w", h.Metadata.Name, err))
		}
		runtimes = append(runtimes, obj)
		annotations[h.Metadata.Name] = h.Metadata.Annotations
	}
	cluster := fake.NewClientBuilder().WithScheme(scheme).WithObjects(runtimes...).Build()
	ctx := context.Background()
	out := make([]resolved, 0, len(in.Objects))
	for _, raw := range in.Objects {
		// Decoded as an API server without strict field validation does: unknown fields are
		// dropped (a sample may carry one; the validating mode reports them).
		isvc := &v1beta1.InferenceService{}
		if err := json.Unmarshal(raw, isvc); err != nil {
			out = append(out, resolved{Error: err.Error()})
			continue
		}
		isvc.DefaultInferenceService(isvcConfig, deployConfig, securityConfig, nil, nil)
		r := resolved{Object: isvc}
		model := isvc.Spec.Predictor.Model
		if model != nil {
			if model.Runtime != nil {
				r.SelectedRuntime = *model.Runtime
			} else {
				supported, err := model.GetSupportingRuntimes(ctx, cluster, isvc.Namespace, false, isvc.Spec.Predictor.WorkerSpec != nil)
				if err != nil {
					r.Error = err.Error()
				} else if len(supported) == 0 {
					r.Error = "no runtime supports the model"
				} else {
					r.SelectedRuntime = supported[0].Name
				}
			}
			r.ServerType = annotations[r.SelectedRuntime]["serving.kserve.io/server-type"]
		}
		out = append(out, r)
	}
	llms := make([]convertedLLM, 0, len(in.LLMs))
	for _, raw := range in.LLMs {
		llms = append(llms, convertLLM(raw))
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(resolveOutput{Objects: out, LLMs: llms}); err != nil {
		fail(err)
	}
}

func main() {
	resolveMode := flag.Bool("resolve", false, "default InferenceServices and select their runtimes instead of validating")
	flag.Parse()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{v1alpha1.AddToScheme, v1alpha2.AddToScheme, v1beta1.AddToScheme} {
		if err := add(scheme); err != nil {
			fmt.Fprintln(os.Stderr, "kserve-webhook:", err)
			os.Exit(1)
		}
	}
	if *resolveMode {
		resolve(scheme)
		return
	}
	var objects []json.RawMessage
	if err := json.NewDecoder(os.Stdin).Decode(&objects); err != nil {
		fmt.Fprintln(os.Stderr, "kserve-webhook: stdin is not a JSON array of objects:", err)
		os.Exit(2)
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
