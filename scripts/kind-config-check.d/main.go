// Command kind-config-check decodes a kind cluster configuration strictly with kind's own
// v1alpha4 types (unknown fields are errors, as `kind create cluster` treats them), checks that
// the embedded containerd patches are TOML and the kubeadm patches are YAML objects with a kind,
// applies kind's defaults and prints the decoded configuration as JSON. Exit 1 on any error.
//
// Built by scripts/kind-config-check against the kind release pinned in scripts/versions.env.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/BurntSushi/toml"
	jsonpatch "github.com/evanphx/json-patch/v5"
	"sigs.k8s.io/kind/pkg/apis/config/v1alpha4"
	"sigs.k8s.io/yaml"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "kind-config-check: "+format+"\n", args...)
	os.Exit(1)
}

func checkKubeadmPatches(where string, patches []string) {
	for i, p := range patches {
		var doc map[string]any
		if err := yaml.Unmarshal([]byte(p), &doc); err != nil {
			fail("%s kubeadmConfigPatches[%d] is not YAML: %v", where, i, err)
		}
		if _, ok := doc["kind"]; !ok {
			fail("%s kubeadmConfigPatches[%d] names no kind", where, i)
		}
	}
}

// check6902 decodes each JSON 6902 patch (a YAML list of operations) with the JSON patch
// library kind applies them with.
func check6902(where string, patches []v1alpha4.PatchJSON6902) {
	for i, p := range patches {
		if p.Group == "" || p.Version == "" || p.Kind == "" {
			fail("%s kubeadmConfigPatchesJSON6902[%d] needs group, version and kind", where, i)
		}
		doc, err := yaml.YAMLToJSON([]byte(p.Patch))
		if err != nil {
			fail("%s kubeadmConfigPatchesJSON6902[%d] is not YAML: %v", where, i, err)
		}
		if _, err := jsonpatch.DecodePatch(doc); err != nil {
			fail("%s kubeadmConfigPatchesJSON6902[%d] is not a JSON patch: %v", where, i, err)
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: kind-config-check FILE")
	}
	data, err := os.ReadFile(os.Args[1])
	if err != nil {
		fail("%v", err)
	}
	var cfg v1alpha4.Cluster
	// UnmarshalStrict: YAML to JSON, then a json.Decoder with DisallowUnknownFields.
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		fail("%s: %v", os.Args[1], err)
	}
	if cfg.APIVersion != "kind.x-k8s.io/v1alpha4" || cfg.Kind != "Cluster" {
		fail("%s: apiVersion/kind is %q/%q, not kind.x-k8s.io/v1alpha4/Cluster", os.Args[1], cfg.APIVersion, cfg.Kind)
	}
	for i, p := range cfg.ContainerdConfigPatches {
		var doc map[string]any
		if _, err := toml.Decode(p, &doc); err != nil {
			fail("containerdConfigPatches[%d] is not TOML: %v", i, err)
		}
	}
	checkKubeadmPatches("cluster", cfg.KubeadmConfigPatches)
	check6902("cluster", cfg.KubeadmConfigPatchesJSON6902)
	for i, n := range cfg.Nodes {
		where := fmt.Sprintf("nodes[%d]", i)
		checkKubeadmPatches(where, n.KubeadmConfigPatches)
		check6902(where, n.KubeadmConfigPatchesJSON6902)
	}
	v1alpha4.SetDefaultsCluster(&cfg)
	out, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		fail("%v", err)
	}
	fmt.Println(string(out))
}
